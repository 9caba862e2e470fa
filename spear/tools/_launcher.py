"""In-sandbox launcher: isolate, drop privileges, set limits, run the user's code.

This file is copied into each sandbox's throwaway directory and run with
``python -I _spear_launcher.py CONFIG_JSON`` (docs/SANDBOX.md). It imports only
the standard library because it runs before (and apart from) the spear package.

Order matters:
  1. as root, enter a new network namespace (fallback backend only) while that is
     still allowed, then become an unprivileged uid: RLIMIT_NPROC is never
     enforced for uid 0;
  2. enter a fresh user namespace where possible: the kernel then counts
     RLIMIT_NPROC per namespace, so concurrent sandboxes sharing one uid do not
     eat each other's process budget;
  3. drop every capability (the new user namespace grants a full set) and forbid
     privilege gain through setuid binaries;
  4. set the resource limits;
  5. fork: the child runs the code, this process stays as its supervisor so that
     the code's parent is never the caller, and re-raises the child's fatal
     signal so the caller can tell "killed by SIGXCPU" from an exception.
The code is read and the prelude (common modules; numpy when the code names it)
imported first, before step 1.
"""

import builtins
import ctypes
import json
import os
import re
import resource
import signal
import sys
import traceback
from typing import Any, NoReturn

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SETUP_FAILED_EXIT = 120

PRELUDE = """\
import bisect, cmath, collections, decimal, fractions, functools, heapq, itertools, math
import operator, random, re, statistics, string
from collections import Counter, defaultdict, deque
from decimal import Decimal
from fractions import Fraction
from itertools import combinations, permutations, product
from math import comb, factorial, gcd, isqrt, lcm, sqrt
"""
# numpy doubles the start-up time, so it is preloaded only for code that names it
NUMPY_PRELUDE = """\
try:
    import numpy
    import numpy as np
except ImportError:
    pass
"""
_NAMES_NUMPY = re.compile(rb"\b(np|numpy)\b")

_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> bool:
    return _libc.unshare(flags) == 0


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")


def _isolate(config: dict[str, Any]) -> None:
    want_net = bool(config["unshare_net"])
    if os.geteuid() == 0:
        if want_net and _unshare(CLONE_NEWNET):
            want_net = False
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        if os.geteuid() == 0 or os.getuid() == 0:
            raise OSError("could not drop root privileges")
    if not (want_net and _unshare(CLONE_NEWUSER | CLONE_NEWNET)):
        _unshare(CLONE_NEWUSER)
    _drop_capabilities()


def _limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _set_limits(config: dict[str, Any]) -> None:
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = config["cpu_s"]
    # soft limit -> SIGXCPU (reported as "CPU time limit"); the hard limit one second
    # later is SIGKILL in case the code catches SIGXCPU
    if cpu_hard == resource.RLIM_INFINITY or cpu + 1 <= cpu_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    else:
        _limit(resource.RLIMIT_CPU, cpu)
    _limit(resource.RLIMIT_AS, config["memory_bytes"])
    _limit(resource.RLIMIT_NPROC, config["max_processes"])
    _limit(resource.RLIMIT_FSIZE, config["file_bytes"])
    _limit(resource.RLIMIT_NOFILE, config["max_open_files"])
    _limit(resource.RLIMIT_CORE, 0)


def _prelude(config: dict[str, Any], source: bytes) -> dict[str, Any]:
    """The code's namespace: common math modules, numpy if the code uses it, the caller's variables.

    Imported before privileges are dropped, so that the prelude works even when
    the interpreter's files are unreadable to the sandbox uid (rlimit backend).
    """
    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    sys.stderr.reconfigure(encoding="utf-8", errors="backslashreplace")
    sys.path.extend(config["site_dirs"])
    # started with -S: add the builtins `site` would have (exit, quit, help, ...) without
    # running the site-packages' .pth files
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    prelude = PRELUDE + (NUMPY_PRELUDE if _NAMES_NUMPY.search(source) else "")
    exec(compile(prelude, "<prelude>", "exec"), namespace)
    namespace.update(config["variables"])
    return namespace


def _run_code(config: dict[str, Any], source: bytes, namespace: dict[str, Any]) -> NoReturn:
    """Child: run the user's code as ``__main__``; never returns."""
    try:
        code = compile(source, config["code_file"], "exec")
    except (SyntaxError, ValueError) as exc:
        traceback.print_exception(type(exc), exc, None)
        sys.exit(1)
    try:
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException as exc:
        # skip this launcher's own frame: the model should see only its code
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        sys.exit(1)
    sys.exit(0)


def _supervise(child: int) -> int:
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        sys.stdout.flush()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.WEXITSTATUS(status)


def main() -> int:
    config = json.loads(sys.argv[1])
    with open(config["code_file"], "rb") as handle:
        source = handle.read()
    namespace = _prelude(config, source)
    try:
        _isolate(config)
        _set_limits(config)
    except OSError as exc:
        sys.stderr.write(f"sandbox setup failed: {exc}\n")
        return SETUP_FAILED_EXIT
    supervisor = os.getpid()
    child = os.fork()
    if child == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != supervisor:
            os._exit(SETUP_FAILED_EXIT)
        _run_code(config, source, namespace)
    return _supervise(child)


if __name__ == "__main__":
    sys.exit(main())
