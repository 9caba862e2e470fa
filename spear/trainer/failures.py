"""Episodes that raised: told once in full, counted every step, and fatal when they dominate.

An environment that raises (or whose worker hangs or dies) fails its episode only
(:mod:`spear.envs.pool`): the episode is left out of the loss and the batch goes on, which
keeps a long run alive through a rare crash. A bug that makes *every* episode raise would
otherwise train on nothing and evaluate "0 held-out episodes" without a word, so:

* the first occurrence of each distinct error is written in full (with its traceback) to
  ``RUN_DIR/errors.log`` and announced in one line on stderr;
* the trainer logs ``rollout/episodes_failed`` every step (``RolloutBatch.stats``);
* when more than :data:`MAX_FAILED_SHARE` of a batch's episodes raised, the run stops with
  :class:`EpisodeFailureError` (the CLI prints it and exits with code 1).

An episode the agent loses is not a failure here: only exceptions count.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from spear.rollout.batch import TrajectoryRecord

ERRORS_LOG = "errors.log"
MAX_FAILED_SHARE = 0.5  # more than this share of a batch's episodes raising stops the run


class EpisodeFailureError(RuntimeError):
    """Most episodes of a batch raised an exception: the environment (or the rollout) is broken."""


def headline(error: str) -> str:
    """The ``Type: message`` line of an error text (a traceback's last non-empty line)."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


class FailureLog:
    """Watches the episodes of every batch a run plays (training steps and evaluations).

    Args:
        run_dir: where ``errors.log`` goes; None (e.g. ``spear eval``) only announces on stderr.
    """

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / ERRORS_LOG if run_dir is not None else None
        self.seen: set[str] = set()

    def check(self, records: Sequence[TrajectoryRecord], where: str) -> int:
        """Record the failed episodes of one batch played at ``where`` (e.g. "step 3");
        return how many failed, or raise :class:`EpisodeFailureError` when more than
        :data:`MAX_FAILED_SHARE` of them did."""
        failed = [r for r in records if r.failed]
        for record in failed:
            text = record.error or "unknown error"
            first = headline(text)
            if first in self.seen:
                continue
            self.seen.add(first)
            told = ""
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as log:
                    log.write(
                        f"--- {where}, episode {record.traj_id} (task seed {record.seed}):\n{text.rstrip()}\n"
                    )
                told = f" (in full: {self.path})"
            print(f"spear: warning: {where}: an episode raised {first}{told}", file=sys.stderr, flush=True)
        if records and len(failed) > MAX_FAILED_SHARE * len(records):
            where_full = f"; the traceback is in {self.path}" if self.path is not None else ""
            raise EpisodeFailureError(
                f"{where}: {len(failed)} of {len(records)} episodes raised an exception, first "
                f"{headline(failed[0].error or '')}{where_full}. More than half of a batch failing "
                "means the environment is broken, so the run stops"
            )
        return len(failed)
