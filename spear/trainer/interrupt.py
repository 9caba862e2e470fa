"""Ctrl-C during training: stop at a step boundary, never checkpoint a half-updated state.

A training step has two phases (:meth:`spear.trainer.loop.Trainer.fit`):

* **clean**: rollout, behaviour log-probs, advantages. Nothing the checkpoint holds
  (weights, optimizer, buffer) changes, so a Ctrl-C stops at once and the state is still
  that of the last completed step.
* **held**: the optimizer steps, the replay update, the buffer's store, the mid-run
  evaluation, logging and the step's checkpoint. A first Ctrl-C here is *held* until the
  step is complete (its checkpoint is then written); a second one stops at once and the
  step is lost, the newest checkpoint on disk staying what resumes.

:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) then carries what was kept; the CLI
prints one line on how to resume and exits with code 130.

SIGTERM (``kill``, a scheduler pre-empting a job) is a request to stop gracefully: a first
one acts as a first Ctrl-C, and one arriving while a stop is already under way is ignored
(a group kill may deliver it twice, or after a terminal's Ctrl-C), so stopping at once
takes a second Ctrl-C or SIGKILL. :class:`InterruptGuard` handles it during training,
:class:`SigtermAsInterrupt` around it (the CLI, a sweep's parent process).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C.

    Attributes:
        run_dir: the run directory.
        completed: the last step whose effects are complete in ``checkpoint`` (0: none).
        checkpoint: the checkpoint a ``--resume`` continues from, or None when no step was
            kept (nothing to resume: start again).
        lost_step: a step that was part-way through its update when a second Ctrl-C
            stopped it (its effects are discarded), or None.
    """

    def __init__(self, run_dir: Path, completed: int, checkpoint: Path | None, lost_step: int | None = None):
        super().__init__(run_dir, completed, checkpoint, lost_step)  # as args, so it pickles
        self.run_dir, self.completed = run_dir, completed
        self.checkpoint, self.lost_step = checkpoint, lost_step

    def message(self) -> str:
        """One line for the user: what was kept and how to go on."""
        lost = f"step {self.lost_step} was stopped during its update and is lost; " if self.lost_step else ""
        if self.checkpoint is None:
            return f"interrupted: {lost}no step was checkpointed: nothing to resume in {self.run_dir}"
        return (
            f"interrupted: {lost}checkpoint of step {self.completed} kept in {self.checkpoint}; "
            f"resume with: spear train --resume {self.run_dir}"
        )


class _Handlers:
    """Installs ``handlers`` ({signal number: handler}) for the duration of a ``with`` block,
    in the main thread only (elsewhere Python's defaults apply), and restores the previous
    ones, including one set outside Python (``signal.signal`` reports it as None)."""

    def _handlers(self) -> dict[int, Any]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._handlers().items():
                self._previous[signum] = signal.signal(signum, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous = {}


class InterruptGuard(_Handlers):
    """SIGINT and SIGTERM handlers for the duration of a ``with`` block that hold the first
    Ctrl-C while :meth:`hold` is on.

    ``requested`` tells the loop that a held Ctrl-C is waiting; ``held`` whether the state
    is part-way through a change (a ``KeyboardInterrupt`` raised then leaves it inconsistent);
    ``stopping`` that a ``KeyboardInterrupt`` was raised.
    """

    def __init__(self) -> None:
        self.requested = False
        self.held = False
        self.stopping = False

    def _handlers(self) -> dict[int, Any]:
        return {signal.SIGINT: self._on_sigint, signal.SIGTERM: self._on_sigterm}

    def hold(self) -> None:
        """The state starts changing: a first Ctrl-C waits for :meth:`release`."""
        self.held = True

    def release(self) -> None:
        """The state is consistent again (a step is complete)."""
        self.held = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.held and not self.requested:
            self.requested = True
            print(
                f"\nspear: {_NAMES[signum]}: finishing this step so its checkpoint is whole "
                "(Ctrl-C again stops at once and loses the step)",
                file=sys.stderr,
                flush=True,
            )
            return
        self.stopping = True
        raise KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if not (self.requested or self.stopping):  # a stop under way is never hurried by SIGTERM
            self._on_sigint(signum, frame)


class SigtermAsInterrupt(_Handlers):
    """A SIGTERM handler for the duration of a ``with`` block: the first SIGTERM acts as a
    first Ctrl-C (whatever SIGINT does then: Python's ``KeyboardInterrupt``, or nothing where
    SIGINT is ignored), after calling ``on_sigterm`` (a sweep's parent tells its workers to
    stop, :func:`spear.experiments.compare._run_all`); a repeat is ignored. During training
    :class:`InterruptGuard` takes over."""

    def __init__(self, on_sigterm: Callable[[], None] | None = None) -> None:
        self.on_sigterm = on_sigterm
        self.received = False

    def _handlers(self) -> dict[int, Any]:
        return {signal.SIGTERM: self._on_sigterm}

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        on_sigint = signal.getsignal(signal.SIGINT)
        if self.received or on_sigint == signal.SIG_IGN:
            return
        self.received = True
        if self.on_sigterm is not None:
            self.on_sigterm()
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
        else:  # SIG_DFL, or a handler set outside Python
            raise KeyboardInterrupt
