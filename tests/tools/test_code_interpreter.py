"""The ``code_interpreter`` tool: schema, fenced-code extraction, observation text."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from spear.envs.actions import format_tool_call, parse_tool_calls
from spear.tools import (
    CODE_INTERPRETER_SCHEMA,
    CodeInterpreter,
    SandboxLimits,
    SandboxResult,
    extract_code,
    observation_text,
)


def result(stdout: str = "", stderr: str = "", error: str | None = None, **kw: object) -> SandboxResult:
    fields = {"exit_code": 0 if error is None else 1, "timed_out": False, "backend": "bwrap", **kw}
    return SandboxResult(ok=error is None, stdout=stdout, stderr=stderr, error=error, **fields)  # type: ignore[arg-type]


def test_schema_is_a_function_tool_taking_code() -> None:
    function = CODE_INTERPRETER_SCHEMA["function"]
    assert CODE_INTERPRETER_SCHEMA["type"] == "function" and function["name"] == "code_interpreter"
    assert function["parameters"]["required"] == ["code"]
    assert function["parameters"]["properties"]["code"]["type"] == "string"
    json.dumps(CODE_INTERPRETER_SCHEMA)  # serialisable for chat templates


def test_schema_validates_calls_with_the_shared_parser() -> None:
    ok = parse_tool_calls(
        format_tool_call("code_interpreter", {"code": "print(1)"}), [CODE_INTERPRETER_SCHEMA]
    )
    assert ok.error is None and ok.calls[0].arguments == {"code": "print(1)"}
    wrong = parse_tool_calls(format_tool_call("code_interpreter", {"code": 5}), [CODE_INTERPRETER_SCHEMA])
    assert wrong.error is not None and "type string" in wrong.error


def test_extract_code_unwraps_python_fences() -> None:
    assert extract_code("```python\nprint(1)\n```") == "print(1)\n"
    assert extract_code("Here:\n```py\nx = 2\n```\nthen\n```\nprint(x)\n```\n") == "x = 2\nprint(x)\n"
    assert extract_code("```python\nprint(3)") == "print(3)\n"  # unterminated: to the end
    assert extract_code("print(4)") == "print(4)"
    assert extract_code("") == ""


@given(st.text(max_size=300))
def test_extract_code_never_raises(text: str) -> None:
    assert isinstance(extract_code(text), str)


def test_observation_joins_stdout_and_stderr() -> None:
    assert observation_text(result("45\n")) == "45\n"
    assert observation_text(result("a", "warning\n")) == "a\nwarning\n"
    assert observation_text(result()) == "(no output: use print() to show results)"


def test_observation_of_an_exception_is_its_traceback() -> None:
    tb = "Traceback (most recent call last):\nZeroDivisionError: division by zero\n"
    assert observation_text(result("", tb, "exited with status 1")) == tb


def test_observation_names_limits_and_signals() -> None:
    timeout = result(error="time limit exceeded (5 s)", exit_code=None, timed_out=True)
    assert observation_text(timeout) == "Error: time limit exceeded (5 s)"
    killed = result("partial\n", error="the process was killed by SIGKILL", exit_code=137)
    assert observation_text(killed) == "partial\nError: the process was killed by SIGKILL"
    silent_exit = result(error="exited with status 3", exit_code=3)
    assert observation_text(silent_exit) == "Error: exited with status 3"


def test_observation_is_truncated_but_keeps_the_error_line() -> None:
    long = result("x" * 500, error="time limit exceeded (5 s)", exit_code=None, timed_out=True)
    text = observation_text(long, max_chars=100)
    assert len(text) <= 100
    assert text.endswith("\nError: time limit exceeded (5 s)") and "[... output truncated" in text
    plain = observation_text(result("y" * 500), max_chars=80)
    assert len(plain) == 80 and plain.startswith("yyy") and plain.endswith("truncated to 80 characters]")


@given(st.text(max_size=200), st.text(max_size=200), st.integers(1, 300))
def test_observation_never_exceeds_the_limit(stdout: str, stderr: str, limit: int) -> None:
    text = observation_text(result(stdout, stderr, "exited with status 2", exit_code=2), max_chars=limit)
    assert len(text) <= limit


def test_tool_object_runs_fenced_code_in_the_sandbox() -> None:
    tool = CodeInterpreter(SandboxLimits(wall_time_s=2.0, max_output_chars=50))
    assert tool.name == "code_interpreter" and tool.schema is CODE_INTERPRETER_SCHEMA
    assert tool("```python\nprint(sum(range(10)))\n```") == "45\n"
    assert len(tool("print('z' * 1000)")) <= 50
