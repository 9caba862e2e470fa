"""Atomic, resumable checkpoints.

Layout of a run directory::

    run_dir/checkpoints/step-000010/   model (HF format), optimizer.pt, state.pt (step, replay
                                       buffer with its RNG, config, eval before RL, torch threads)
    run_dir/checkpoints/LATEST         name of the newest complete checkpoint

A checkpoint is written into a temporary folder, fsynced and renamed into place;
only then is ``LATEST`` replaced (write-then-rename). A run killed at any moment,
even by SIGKILL, therefore resumes from the last complete checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = "checkpoints"
LATEST = "LATEST"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Fill a hidden sibling ``.<name>.partial/`` of ``final``; when the block ends without an
    error, it replaces ``final`` by renames (an older ``final`` is moved to ``.<name>.old/``
    first and deleted after), else it is deleted.

    A process killed at any moment leaves the old or the new ``final`` complete, plus at most
    a hidden leftover that the next call for the same ``final`` removes. One writer per
    ``final`` at a time (a cold start, an archive, a starting policy's build).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staged, old = (final.with_name(f".{final.name}.{suffix}") for suffix in ("partial", "old"))
    for leftover in (staged, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staged.mkdir()
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Where checkpoint ``step`` of a run lives."""
    return Path(run_dir) / CHECKPOINTS / f"step-{step:06d}"


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep: int = 2,
    model_files: dict[str, str] | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically and prune all but the newest ``keep``;
    ``model_files``: text files written beside the weights (name -> content)."""
    final = checkpoint_dir(run_dir, step)
    root, name = final.parent, final.name
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    model.save_pretrained(tmp / "model", safe_serialization=True)
    tokenizer.save_pretrained(tmp / "model")
    for file_name, text in (model_files or {}).items():
        (tmp / "model" / file_name).write_text(text)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(state, tmp / "state.pt")
    for file in tmp.rglob("*"):
        if file.is_file():
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    atomic_write_text(root / LATEST, name)
    complete = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for old in complete[: max(0, len(complete) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "state.pt").is_file() else None


def checkpoint_step(checkpoint: Path) -> int:
    """The step a checkpoint folder (``step-000012``) holds."""
    return int(Path(checkpoint).name.removeprefix("step-"))


def saved_threads(checkpoint: Path) -> int | None:
    """The torch thread count the run had when it wrote ``checkpoint`` (None for checkpoints
    written before spear recorded it)."""
    threads = torch.load(checkpoint / "state.pt", weights_only=False).get("threads")
    return threads if isinstance(threads, int) and threads >= 1 else None


def load_state(checkpoint: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer state, optimizer state) of a checkpoint."""
    state = torch.load(checkpoint / "state.pt", weights_only=False)
    optimizer_state = torch.load(checkpoint / "optimizer.pt", weights_only=False)
    return state, optimizer_state
