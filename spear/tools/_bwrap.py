"""The bubblewrap command line of the sandbox (docs/SANDBOX.md, "bwrap backend").

The sandbox sees a fresh root: read-only binds of only what the interpreter needs
(``/usr``, the ``/lib*`` and ``/bin`` entries, the dynamic-loader files of
``/etc``, ``sys.base_prefix`` and the environment's site-packages), a fresh
``/proc``, ``/dev`` and size-capped ``/tmp``, and the throwaway directory bound
read-write at :data:`SANDBOX_DIR`. Nothing else of the host is visible.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass

BWRAP = "/usr/bin/bwrap"
SANDBOX_DIR = "/sandbox"
TMP_SIZE_BYTES = 64 * 1024 * 1024
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")
# bwrap --unshare-all as root creates a user namespace that maps uid 0 to host
# root, where RLIMIT_NPROC is not enforced; as root we unshare everything but the
# user namespace and let the launcher drop to an unprivileged uid instead.
_UNSHARE_AS_ROOT = (
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
)


@dataclass(frozen=True)
class PythonLayout:
    """Where the host's interpreter lives: the paths the sandbox must see."""

    interpreter: str
    read_only: tuple[str, ...]
    site_dirs: tuple[str, ...]


def python_layout() -> PythonLayout:
    """The base interpreter (not a venv shim) plus the current environment's site-packages."""
    interpreter = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    site_dirs = tuple(
        dict.fromkeys(
            os.path.realpath(p)
            for p in (sysconfig.get_path("purelib"), sysconfig.get_path("platlib"))
            if p and os.path.isdir(p)
        )
    )
    paths = ["/usr", os.path.realpath(sys.base_prefix), os.path.dirname(interpreter), *site_dirs]
    return PythonLayout(interpreter, _outermost(paths), site_dirs)


def _outermost(paths: list[str]) -> tuple[str, ...]:
    """Drop paths that lie inside another path of the list (one bind covers them)."""
    unique = sorted({p.rstrip("/") or "/" for p in paths if os.path.isdir(p)})
    kept: list[str] = []
    for path in unique:
        if not any(path == k or path.startswith(k + "/") for k in kept):
            kept.append(path)
    return tuple(kept)


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def mount_args(layout: PythonLayout, workdir: str) -> list[str]:
    """``--symlink`` / ``--dir`` / ``--ro-bind`` arguments building the sandbox's filesystem."""
    # the fresh /proc, /dev and /tmp first: a later bind (e.g. a venv under /tmp) must land on top
    args = [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(TMP_SIZE_BYTES),
        "--tmpfs",
        "/tmp",
    ]
    for entry in _TOP_LEVEL:
        if os.path.islink(entry):
            args += ["--symlink", os.readlink(entry), entry]
        elif os.path.isdir(entry):
            args += ["--ro-bind", entry, entry]
    etc = [p for p in _ETC if os.path.exists(p)]
    # directories bwrap creates implicitly are 0700 when it runs as root: make them
    # explicitly so the unprivileged sandbox user can traverse them
    parents = sorted({a for p in (*layout.read_only, *etc) for a in _ancestors(p)} - {"/usr"})
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for path in layout.read_only:
        args += ["--ro-bind", path, path]
    for path in etc:
        args += ["--ro-bind", path, path]
    args += ["--bind", workdir, SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    return args


def bwrap_command(layout: PythonLayout, workdir: str, env: dict[str, str], inner: list[str]) -> list[str]:
    """The full ``bwrap`` argv running ``inner`` in a sandbox over ``workdir``."""
    if os.geteuid() == 0:
        isolation = [*_UNSHARE_AS_ROOT, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        isolation = ["--unshare-all"]
    args = [BWRAP, *isolation, "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, *mount_args(layout, workdir), "--", *inner]
