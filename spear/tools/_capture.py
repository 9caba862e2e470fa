"""Run a sandbox process under a wall-clock deadline with bounded output capture.

The sandboxed code controls how much it prints, so the parent never buffers more
than ``max_bytes`` per stream: the rest is read and dropped (the child must not
block on a full pipe) and counted. At the deadline, or once the code has exited,
the whole process group is killed: with bwrap that takes the sandbox's PID
namespace down with it (``--die-with-parent``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

_CHUNK = 65536
# after the code exits, how long to wait for pipes still held open by leftovers
_DRAIN_GRACE_S = 0.2


@dataclass
class Captured:
    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool
    dropped_bytes: int
    duration_s: float


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill()


def run_captured(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    wall_time_s: float,
    max_bytes: int,
) -> Captured:
    """Start ``argv`` in a new session, capture at most ``max_bytes`` of each stream."""
    start = time.monotonic()
    deadline = start + wall_time_s
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}  # type: ignore[union-attr]
    dropped = 0
    timed_out = False
    selector = selectors.DefaultSelector()
    try:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        exited_at: float | None = None
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _DRAIN_GRACE_S:
                break
            if now >= deadline:
                timed_out = exited_at is None
                break
            limit = deadline - now if exited_at is None else _DRAIN_GRACE_S
            for key, _ in selector.select(timeout=min(limit, 0.1)):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                room = max(0, max_bytes - len(buffer))
                buffer += chunk[:room]
                dropped += max(0, len(chunk) - room)
        if exited_at is None and not timed_out:
            # both pipes closed but the code still runs: it keeps its time budget
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        selector.close()
        _kill_group(proc)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    out, err = buffers.values()
    return Captured(
        stdout=bytes(out),
        stderr=bytes(err),
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        dropped_bytes=dropped,
        duration_s=time.monotonic() - start,
    )
