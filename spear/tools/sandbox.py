"""Run untrusted, model-written Python code in a sandbox (spec 4.4; docs/SANDBOX.md).

Each call runs in its own process tree with CPU-time, wall-time, memory, process
and file-size limits, no network, a throwaway working directory (deleted after)
and bounded output capture::

    result = run_python("print(sum(range(10)))")
    result.ok, result.stdout            # True, "45\\n"

Backends:
  * ``bwrap``: bubblewrap namespaces, a fresh root holding only the interpreter's
    files read-only: the code cannot see or touch the rest of the host;
  * ``rlimit``: the fallback when bubblewrap is missing or cannot create
    namespaces: the same limits and throwaway directory, a private network
    namespace where the kernel allows one, but *no filesystem isolation*.

``backend="auto"`` (default) uses bwrap when a probe run succeeds (checked once).
"""

from __future__ import annotations

import functools
import json
import keyword
import logging
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from spear.tools._bwrap import BWRAP, SANDBOX_DIR, bwrap_command, python_layout
from spear.tools._capture import Captured, run_captured

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "bwrap", "rlimit")
# uid/gid the code runs as when the caller is root (RLIMIT_NPROC does not bind root)
SANDBOX_UID = 65534
SANDBOX_GID = 65534
MAX_OPEN_FILES = 256
MAX_VARIABLES_BYTES = 64 * 1024
_LAUNCHER = Path(__file__).with_name("_launcher.py")
_LAUNCHER_NAME = "_spear_launcher.py"
_CODE_NAME = "main.py"
_SETUP_FAILED_EXIT = 120
_SIGNAL_NAMES = {6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ"}


class SandboxUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-call resource limits (defaults: the paper's tool, scaled down; spec 4.4)."""

    wall_time_s: float = 5.0
    cpu_time_s: float = 5.0
    memory_mb: int = 512
    max_output_chars: int = 4096
    max_processes: int = 32
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        for name in ("wall_time_s", "cpu_time_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        minimums = {"memory_mb": 32, "max_output_chars": 1, "max_processes": 2, "max_file_mb": 1}
        for name, least in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


@dataclass
class SandboxResult:
    """The outcome of one :func:`run_python` call.

    ``ok`` is True when the code exited with status 0 within the limits.
    ``error`` says why not (time limit, CPU limit, signal, exit status).
    ``stdout``/``stderr`` are already truncated (``truncated`` tells).
    """

    ok: bool
    stdout: str
    stderr: str
    error: str | None
    exit_code: int | None
    timed_out: bool
    backend: str
    truncated: bool = False
    duration_s: float = 0.0


def _sandbox_env(home: str, tmp: str) -> dict[str, str]:
    # one BLAS/OpenMP thread: threads count against RLIMIT_NPROC and each reserves
    # address space against RLIMIT_AS
    threads = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        **threads,
    }


def _launcher_config(
    limits: SandboxLimits,
    site_dirs: tuple[str, ...],
    unshare_net: bool,
    label: str,
    variables: dict[str, str],
) -> str:
    return json.dumps(
        {
            # unused by the launcher: it puts the host's throwaway directory in the
            # command line of every process of this sandbox, so `ps` can tell them apart
            "label": label,
            "uid": SANDBOX_UID,
            "gid": SANDBOX_GID,
            "unshare_net": unshare_net,
            "cpu_s": max(1, math.ceil(limits.cpu_time_s)),
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "max_processes": limits.max_processes,
            "file_bytes": limits.max_file_mb * 1024 * 1024,
            "max_open_files": MAX_OPEN_FILES,
            "site_dirs": list(site_dirs),
            "code_file": _CODE_NAME,
            "variables": variables,
        }
    )


def _fill_workdir(workdir: str, code: str) -> None:
    (Path(workdir) / _CODE_NAME).write_text(code, encoding="utf-8", errors="surrogatepass")
    shutil.copyfile(_LAUNCHER, Path(workdir) / _LAUNCHER_NAME)
    if os.geteuid() == 0:
        # the code runs as SANDBOX_UID and must be able to write its working directory
        for name in (".", _CODE_NAME, _LAUNCHER_NAME):
            os.chown(Path(workdir) / name, SANDBOX_UID, SANDBOX_GID)


def _remove_workdir(workdir: str) -> None:
    """Delete the throwaway directory even if the code made parts of it unreadable."""
    for root, dirs, _ in os.walk(workdir):
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(workdir, ignore_errors=True)


# -I: isolated (no PYTHON* variables, user site or current directory on sys.path); -S: no
# `site` at start-up, so no .pth file of the host's site-packages runs inside the sandbox
# (one on the development machines imported certifi: 55 ms of every call). The launcher
# puts the site-packages on sys.path itself and restores exit() and quit().
_INTERPRETER_FLAGS = ("-I", "-S")


def _command(
    backend: str, workdir: str, limits: SandboxLimits, variables: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    layout = python_layout()
    if backend == "bwrap":
        env = _sandbox_env(SANDBOX_DIR, "/tmp")
        config = _launcher_config(
            limits, layout.site_dirs, unshare_net=False, label=workdir, variables=variables
        )
        inner = [layout.interpreter, *_INTERPRETER_FLAGS, f"{SANDBOX_DIR}/{_LAUNCHER_NAME}", config]
        return bwrap_command(layout, workdir, env, inner), _sandbox_env(workdir, workdir)
    env = _sandbox_env(workdir, workdir)
    config = _launcher_config(limits, layout.site_dirs, unshare_net=True, label=workdir, variables=variables)
    return [layout.interpreter, *_INTERPRETER_FLAGS, os.path.join(workdir, _LAUNCHER_NAME), config], env


def _signal_of(returncode: int | None, backend: str) -> int | None:
    """The fatal signal of the code, from Popen's -N or bwrap's 128+N convention."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if backend == "bwrap" and 128 < returncode < 160:
        return returncode - 128
    return None


def _describe(captured: Captured, backend: str, limits: SandboxLimits) -> tuple[str | None, int | None]:
    """(error text or None, exit code) of a finished run."""
    if captured.timed_out:
        return f"time limit exceeded ({limits.wall_time_s:g} s)", None
    code = captured.returncode
    sig = _signal_of(code, backend)
    if sig == 24:
        return f"CPU time limit exceeded ({math.ceil(limits.cpu_time_s)} s)", code
    if sig == 25:
        return f"file size limit exceeded ({limits.max_file_mb} MB)", code
    if sig is not None:
        return f"the process was killed by {_SIGNAL_NAMES.get(sig, f'signal {sig}')}", code
    if code == _SETUP_FAILED_EXIT:
        return "the sandbox could not be set up", code
    if code != 0:
        return f"exited with status {code}", code
    return None, code


def _decode(data: bytes, limit: int) -> tuple[str, bool]:
    text = data.decode("utf-8", errors="replace")
    return (text[:limit], True) if len(text) > limit else (text, False)


def _execute(code: str, limits: SandboxLimits, backend: str, variables: dict[str, str]) -> SandboxResult:
    workdir = tempfile.mkdtemp(prefix="spear-sandbox-")
    try:
        _fill_workdir(workdir, code)
        argv, env = _command(backend, workdir, limits, variables)
        captured = run_captured(
            argv,
            cwd=workdir,
            env=env,
            wall_time_s=limits.wall_time_s,
            max_bytes=4 * limits.max_output_chars + 4,
        )
    finally:
        _remove_workdir(workdir)
    error, exit_code = _describe(captured, backend, limits)
    stdout, cut_out = _decode(captured.stdout, limits.max_output_chars)
    stderr, cut_err = _decode(captured.stderr, limits.max_output_chars)
    return SandboxResult(
        ok=error is None,
        stdout=stdout,
        stderr=stderr,
        error=error,
        exit_code=exit_code,
        timed_out=captured.timed_out,
        backend=backend,
        truncated=cut_out or cut_err or captured.dropped_bytes > 0,
        duration_s=captured.duration_s,
    )


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why the bwrap backend cannot run here (None when it can). Probed once per process."""
    if not os.path.exists(BWRAP):
        return f"{BWRAP} not found (install it: apt-get install bubblewrap)"
    try:
        probe = _execute("print(6 * 7)", SandboxLimits(wall_time_s=20.0), "bwrap", {})
    except OSError as exc:
        return f"bwrap could not start: {exc}"
    if probe.ok and probe.stdout.strip() == "42":
        return None
    return f"bwrap probe failed: {probe.error}: {probe.stderr.strip()[-300:]}"


def detect_backend() -> str:
    """``bwrap`` when bubblewrap works on this machine, else ``rlimit`` (logged once)."""
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    _warn_fallback(problem)
    return "rlimit"


@functools.lru_cache(maxsize=1)
def _warn_fallback(problem: str) -> None:
    log.warning("code sandbox: using the weaker 'rlimit' backend (no filesystem isolation): %s", problem)


def _check_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    """String variables the code starts with: identifiers, text values, at most 64 KiB in all."""
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise ValueError(f"variables must be a mapping of names to strings, got {type(variables).__name__}")
    for name, value in variables.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"variables: {name!r} is not a Python identifier")
        if not isinstance(value, str):
            raise ValueError(f"variables: {name!r} must be a string, got {type(value).__name__}")
    size = sum(len(name) + len(value.encode("utf-8", "surrogatepass")) for name, value in variables.items())
    if size > MAX_VARIABLES_BYTES:
        # they travel in the launcher's command line, which the kernel bounds
        raise ValueError(f"variables hold {size} bytes; at most {MAX_VARIABLES_BYTES} are allowed")
    return dict(variables)


def run_python(
    code: str,
    *,
    limits: SandboxLimits | None = None,
    backend: str = "auto",
    variables: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run ``code`` with the prelude of docs/SANDBOX.md in a fresh sandbox; never raises on bad code.

    ``variables`` (names to strings) are defined before the code runs, after the
    prelude, e.g. ``{"question": text}`` so that code can read a problem without
    retyping it. Raises ``ValueError`` for an unknown ``backend``, non-text ``code``
    or bad ``variables``, and :class:`SandboxUnavailableError` when
    ``backend="bwrap"`` cannot run here.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(code, str):
        raise ValueError(f"code must be a string, got {type(code).__name__}")
    checked = _check_variables(variables)
    limits = limits or SandboxLimits()
    if backend == "auto":
        backend = detect_backend()
    elif backend == "bwrap" and bwrap_problem() is not None:
        raise SandboxUnavailableError(bwrap_problem())
    return _execute(code, limits, backend, checked)
