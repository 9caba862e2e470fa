"""Ctrl-C during training: stop at a step boundary, never checkpoint a half-updated state.

A training step has two phases (:meth:`spear.trainer.loop.Trainer.fit`):

* **clean**: rollout, behaviour log-probs, advantages, evaluations. Nothing the checkpoint
  holds (weights, optimizer, buffer) changes, so a Ctrl-C stops at once and the state is
  still that of the last completed step.
* **held**: the optimizer steps, the replay update, the buffer's store, logging and the
  step's checkpoint. A first Ctrl-C here is *held* until the step is complete (its
  checkpoint is then written); a second one stops at once and the step is lost, the
  newest checkpoint on disk staying what resumes.

:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) then carries what was kept; the CLI
prints one line on how to resume and exits with code 130.

SIGTERM (``kill``, a scheduler pre-empting a job) takes the same path as a first Ctrl-C
(:class:`SigtermAsInterrupt`), so a killed run also keeps its last completed step.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


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


class InterruptGuard:
    """Installs a SIGINT handler for the duration of a ``with`` block (main thread only;
    elsewhere Python's default applies) that holds the first Ctrl-C while :meth:`hold` is on.

    ``requested`` tells the loop that a held Ctrl-C is waiting; ``held`` whether the state
    is part-way through a change (a ``KeyboardInterrupt`` raised then leaves it inconsistent).
    """

    def __init__(self) -> None:
        self.requested = False
        self.held = False
        self._previous: Any = None

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

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
                "\nspear: Ctrl-C: finishing this step so its checkpoint is whole "
                "(Ctrl-C again stops at once and loses the step)",
                file=sys.stderr,
                flush=True,
            )
            return
        raise KeyboardInterrupt


class SigtermAsInterrupt:
    """For the duration of a ``with`` block (main thread only), SIGTERM acts as a first
    Ctrl-C: whatever SIGINT does at that moment (:class:`InterruptGuard` holding a step,
    Python's ``KeyboardInterrupt``, or nothing where SIGINT is ignored) happens.

    It is first forwarded to this process's multiprocessing children: a terminal's Ctrl-C
    reaches a whole process group, but ``kill PID`` reaches the parent of ``spear compare
    --jobs N`` alone, and its runs would otherwise train on as orphans. Repeats are ignored,
    because one graceful stop is enough and a worker may get the signal twice (from a group
    kill and forwarded); a second Ctrl-C or SIGKILL still stops at once. Where SIGINT is
    ignored (an idle sweep worker) SIGTERM is too: an idle worker that died would break the
    pool and take the running ones down before their checkpoints.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None

    def __enter__(self) -> SigtermAsInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        on_sigint = signal.getsignal(signal.SIGINT)
        if self.received or on_sigint == signal.SIG_IGN:
            return
        self.received = True
        print("\nspear: SIGTERM: stopping as on Ctrl-C", file=sys.stderr, flush=True)
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGTERM)
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
        else:  # SIG_DFL, or a handler installed outside Python
            raise KeyboardInterrupt
