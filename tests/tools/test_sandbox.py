"""The code sandbox as a security boundary (docs/SANDBOX.md).

Every hostile snippet must end as an error result within its limits while this
test process carries on, and each test checks the effect on the host (a file
that must not appear, a server that must not be reached, processes that must
be gone), so that a broken sandbox fails it.
"""

from __future__ import annotations

import os
import resource
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from spear.tools import SandboxLimits, observation_text, run_python
from spear.tools.sandbox import bwrap_problem, detect_backend

REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(wall_time_s=2.0, cpu_time_s=2.0, memory_mb=256, max_output_chars=2000, max_processes=16)
BWRAP_PROBLEM = bwrap_problem()
needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None, reason=f"bwrap backend unavailable: {BWRAP_PROBLEM}"
)
BACKENDS = [pytest.param("bwrap", marks=needs_bwrap), "rlimit"]


@pytest.fixture
def sandbox_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the throwaway directories appear under this test's own temp dir."""
    root = tmp_path / "sandboxes"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def sandbox_processes(marker: str) -> int:
    """Live processes whose command line names ``marker`` (the sandbox's host dir)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            count += 1
    return count


# -- normal use -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_prints_the_result(backend: str) -> None:
    result = run_python("print(sum(range(10)))", limits=FAST, backend=backend)
    assert result.ok and result.error is None and result.exit_code == 0
    assert result.stdout == "45\n"
    assert result.backend == backend
    assert observation_text(result) == "45\n"


def test_auto_backend_prefers_bwrap() -> None:
    assert detect_backend() == ("bwrap" if BWRAP_PROBLEM is None else "rlimit")
    assert run_python("print(1)", limits=FAST).backend == detect_backend()


def test_numpy_and_prelude_modules_are_available() -> None:
    code = (
        "print(round(np.linalg.det(np.array([[2, 1], [1, 3]]))), Fraction(1, 3) + Fraction(1, 6), lcm(4, 6))"
    )
    result = run_python(code, limits=FAST)
    assert result.stdout == "5 1/2 12\n", result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_site_packages_pth_runs_but_sites_builtins_are_there(backend: str) -> None:
    """The interpreter starts with -S (no host .pth file runs in the sandbox: one cost 55 ms a
    call); exit(), quit() and help exist as under `site`, and exit(3) ends the code with 3."""
    code = "import sys\nprint(sys.flags.no_site, callable(quit), callable(help))\nexit(3)\nprint('after')"
    result = run_python(code, limits=FAST, backend=backend)
    assert result.stdout == "1 True True\n", result.stderr
    assert result.exit_code == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_variables_are_defined_before_the_code_runs(backend: str) -> None:
    question = 'LCM of 4, 6? It\'s "quoted"\n× ünïcode'
    code = "print(question == " + repr(question) + ", math.lcm(*map(int, re.findall(r'\\d+', question))))"
    result = run_python(code, limits=FAST, backend=backend, variables={"question": question})
    assert result.stdout == "True 12\n", result.stderr
    # they come after the prelude (so a name can shadow it) and the traceback stays the code's own
    result = run_python("print(gcd)\n1 / 0", limits=FAST, backend=backend, variables={"gcd": "mine"})
    assert result.stdout.startswith("mine\n") and 'File "main.py", line 2' in result.stderr


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        (["question"], "mapping"),
        ({"2x": "a"}, "'2x' is not a Python identifier"),
        ({"class": "a"}, "'class' is not a Python identifier"),
        ({"question": 42}, "'question' must be a string"),
        ({"question": "x" * 70_000}, "70008 bytes"),
    ],
)
def test_bad_variables_are_rejected_before_running(variables: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        run_python("print(1)", limits=FAST, variables=variables)  # type: ignore[arg-type]


def test_syntax_error_shows_the_traceback() -> None:
    result = run_python("x = 1\nprint(x +\n", limits=FAST)
    assert not result.ok and result.exit_code == 1
    text = observation_text(result)
    assert "SyntaxError" in text and 'File "main.py", line 2' in text
    assert "_spear_launcher" not in text
    assert not any(line.startswith("Error:") for line in text.splitlines())


def test_exception_traceback_shows_only_the_users_code() -> None:
    result = run_python("def f(n):\n    return 1 // n\nprint('before')\nf(0)\n", limits=FAST)
    text = observation_text(result)
    assert text.startswith("before\nTraceback (most recent call last):\n")
    assert 'File "main.py", line 4, in <module>' in text and "ZeroDivisionError" in text
    assert "_spear_launcher" not in text


def test_code_can_use_its_working_directory_which_is_deleted_after(sandbox_tmp: Path) -> None:
    code = "open('notes.txt', 'w').write('kept'); print(open('notes.txt').read())"
    result = run_python(code, limits=FAST)
    assert result.stdout == "kept\n"
    assert list(sandbox_tmp.iterdir()) == []


def test_unreadable_leftovers_are_still_deleted(sandbox_tmp: Path) -> None:
    code = (
        "import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a/b', 0)\nos.chmod('a', 0)\n"
    )
    assert run_python(code, limits=FAST).ok
    assert list(sandbox_tmp.iterdir()) == []


def test_silent_code_gets_a_hint() -> None:
    result = run_python("x = 41 + 1", limits=FAST)
    assert result.ok and observation_text(result) == "(no output: use print() to show results)"


# -- isolation (bwrap) ------------------------------------------------------------------------


@needs_bwrap
def test_files_outside_the_sandbox_are_invisible(tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    outside = tmp_path / "secret.txt"
    in_repo = REPO / f".sandbox-secret-{secret[:8]}.txt"
    outside.write_text(secret)
    in_repo.write_text(secret)
    try:
        paths = [str(outside), str(in_repo), str(REPO / "pyproject.toml")]
        code = (
            f"for path in {paths!r}:\n"
            "    try:\n"
            "        print(open(path).read())\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
        )
        result = run_python(code, limits=FAST, backend="bwrap")
    finally:
        in_repo.unlink()
    assert result.ok, result.stderr
    assert secret not in result.stdout and "spear-rl" not in result.stdout
    assert result.stdout.split() == ["FileNotFoundError"] * 3


@needs_bwrap
def test_writes_outside_the_sandbox_do_not_reach_the_host(tmp_path: Path) -> None:
    name = f"pwned-{uuid.uuid4().hex[:8]}"
    targets = [tmp_path / name, REPO / name, Path(tempfile.gettempdir()) / name, Path.home() / name]
    code = (
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    run_python(code, limits=FAST, backend="bwrap")
    assert [t for t in targets if t.exists()] == []


@needs_bwrap
def test_tmp_is_private_and_writable() -> None:
    name = f"scratch-{uuid.uuid4().hex[:8]}"
    code = f"import tempfile\nopen('/tmp/{name}', 'w').write('x')\nprint(tempfile.gettempdir())\n"
    result = run_python(code, limits=FAST, backend="bwrap")
    assert result.stdout == "/tmp\n", observation_text(result)
    assert not (Path("/tmp") / name).exists()


@needs_bwrap
def test_system_directories_are_read_only() -> None:
    code = "try:\n    open('/usr/pwned', 'w')\nexcept OSError as exc:\n    print(type(exc).__name__)\n"
    result = run_python(code, limits=FAST, backend="bwrap")
    assert result.stdout.strip() in {"PermissionError", "OSError"}
    assert not Path("/usr/pwned").exists()


@needs_bwrap
def test_network_is_unreachable_even_on_localhost() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # the kernel completes handshakes into the backlog without accept()
    port = server.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n"
    result = run_python(code, limits=FAST, backend="bwrap")
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody connected
    server.close()
    assert not result.ok and "ConnectionRefusedError" in observation_text(result)
    # nor can it reach anything else: there is no network device but a down loopback
    outward = run_python(
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", limits=FAST, backend="bwrap"
    )
    assert not outward.ok and "unreachable" in outward.stderr.lower()


# -- resource limits --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_infinite_loop_hits_the_time_limit(backend: str) -> None:
    limits = SandboxLimits(wall_time_s=1.0, cpu_time_s=5.0)
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", limits=limits, backend=backend)
    assert time.monotonic() - start < 3.0
    assert result.timed_out and not result.ok and result.exit_code is None
    assert observation_text(result) == "Error: time limit exceeded (1 s)"


def test_cpu_time_limit_kills_busy_code() -> None:
    result = run_python("while True:\n    pass\n", limits=SandboxLimits(wall_time_s=10.0, cpu_time_s=1.0))
    assert not result.timed_out and result.error == "CPU time limit exceeded (1 s)"
    assert observation_text(result) == "Error: CPU time limit exceeded (1 s)"


def test_sleeping_code_is_stopped_by_the_wall_clock() -> None:
    result = run_python("import time\ntime.sleep(60)\n", limits=SandboxLimits(wall_time_s=0.5))
    assert result.timed_out and result.error == "time limit exceeded (0.5 s)"


def test_closing_its_pipes_does_not_end_the_time_limit() -> None:
    result = run_python(
        "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n", limits=SandboxLimits(wall_time_s=0.5)
    )
    assert result.timed_out


@pytest.mark.parametrize("backend", BACKENDS)
def test_ten_gigabyte_allocation_fails(backend: str) -> None:
    result = run_python("x = bytearray(10 * 1024 ** 3)\nprint('allocated')", limits=FAST, backend=backend)
    assert not result.ok and "allocated" not in result.stdout
    assert "MemoryError" in observation_text(result)


@pytest.mark.parametrize("backend", BACKENDS)
def test_process_limit_binds_even_when_run_as_root(backend: str) -> None:
    # proves RLIMIT_NPROC bites: the launcher drops root and counts processes per sandbox
    code = (
        "import os, time\n"
        "started = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(started)\n"
    )
    result = run_python(code, limits=SandboxLimits(max_processes=8, wall_time_s=2.0), backend=backend)
    assert result.ok, observation_text(result)
    assert 0 < int(result.stdout) <= 6  # the supervisor and the code itself count too


@pytest.mark.parametrize("backend", BACKENDS)
def test_fork_bomb_ends_and_leaves_no_process(backend: str, sandbox_tmp: Path) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    peak: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(sandbox_processes(str(sandbox_tmp)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    result = run_python(bomb, limits=SandboxLimits(wall_time_s=1.5, max_processes=16), backend=backend)
    elapsed = time.monotonic() - start
    done.set()
    watcher.join()
    assert not result.ok and result.timed_out and elapsed < 4.0
    assert max(peak) > 1  # the watcher does see the bomb's processes while it runs...
    deadline = time.monotonic() + 3.0
    while sandbox_processes(str(sandbox_tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(str(sandbox_tmp)) == 0  # ...and none is left after


PARENT_ATTACKS = ("os.kill(os.getppid(), 9)", "os.killpg(0, 9)")


# kill(-1) is left out for rlimit: without a PID namespace it reaches every process of
# the sandbox uid (docs/SANDBOX.md, "rlimit backend")
@pytest.mark.parametrize(
    ("backend", "attack"),
    [
        *[pytest.param("bwrap", attack, marks=needs_bwrap) for attack in (*PARENT_ATTACKS, "os.kill(-1, 9)")],
        *[("rlimit", attack) for attack in PARENT_ATTACKS],
    ],
)
def test_killing_its_parents_only_ends_the_sandbox(backend: str, attack: str) -> None:
    result = run_python(
        f"import os, time\n{attack}\ntime.sleep(5)\nprint('alive')", limits=FAST, backend=backend
    )
    assert not result.ok and "alive" not in result.stdout
    assert result.error == "the process was killed by SIGKILL"
    assert observation_text(result) == "Error: the process was killed by SIGKILL"
    assert run_python("print('still here')", limits=FAST).stdout == "still here\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_output_flood_is_truncated_without_filling_parent_memory(backend: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flood = "import sys\nchunk = 'x' * 10 ** 7\nfor _ in range(100):\n    sys.stdout.write(chunk)\n"
    result = run_python(flood, limits=SandboxLimits(wall_time_s=3.0, max_output_chars=1000), backend=backend)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.truncated and len(result.stdout) == 1000
    assert grown_mb < 100  # 1 GB went through the pipe
    text = observation_text(result, 1000)
    assert len(text) <= 1000 and text.startswith("xxx")


def test_huge_single_print_is_contained() -> None:
    result = run_python("print('x' * 10 ** 9)", limits=FAST)
    assert not result.ok and "MemoryError" in result.stderr


def test_file_size_limit() -> None:
    code = "f = open('big', 'wb')\nfor _ in range(100):\n    f.write(b'x' * 1024 * 1024)\n"
    result = run_python(code, limits=SandboxLimits(max_file_mb=2))
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing the process
    assert not result.ok and "File too large" in observation_text(result)


# -- argument checking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wall_time_s", 0),
        ("cpu_time_s", -1.0),
        ("wall_time_s", float("nan")),
        ("memory_mb", 8),
        ("max_processes", 1),
    ],
)
def test_bad_limits_raise_value_error_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxLimits(**{field: value})


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend"):
        run_python("print(1)", backend="docker")
