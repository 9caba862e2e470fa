"""The ``code_interpreter`` tool of the math setting (spec 4.4; docs/SANDBOX.md).

The model calls ``code_interpreter(code: str)``; the code runs in the sandbox of
:mod:`spear.tools.sandbox` and the model sees :func:`observation_text` of the
result in a ``tool`` message::

    from spear.tools import code_interpreter
    code_interpreter("print(2 ** 10)")          # -> "1024\\n"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spear.tools.sandbox import SandboxLimits, SandboxResult, run_python

NO_OUTPUT = "(no output: use print() to show results)"
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)

CODE_INTERPRETER_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "code_interpreter",
        "description": (
            "Run Python 3 code in a sandbox and return what it prints (stdout, then stderr). "
            "math, itertools, fractions, collections and numpy (as np) are already imported. "
            "No network or file access outside the working directory; time and memory are limited. "
            "Use print() to see results."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The Python code to run; a ```python fenced block is unwrapped.",
                }
            },
            "required": ["code"],
        },
    },
}


def extract_code(text: str) -> str:
    """The code inside ```python fences (all fenced blocks, joined), else ``text`` itself.

    Models often wrap the tool argument in a Markdown fence (spec 4.4: the tool
    "extracts fenced code"); prose between several blocks is dropped. An
    unterminated fence runs to the end of the text.
    """
    blocks = _FENCE.findall(text)
    return "\n".join(block.rstrip() for block in blocks) + "\n" if blocks else text


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"\n[... output truncated to {limit} characters]"
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)] + marker


def _needs_error_line(result: SandboxResult) -> bool:
    # an uncaught exception (status 1 with a traceback) already explains itself
    return result.error is not None and not (result.exit_code == 1 and result.stderr)


def observation_text(result: SandboxResult, max_chars: int = 4096) -> str:
    """What the model sees: stdout, stderr, then an ``Error: ...`` line when needed.

    The error line is added for time/CPU limits, signals and silent failures, e.g.
    ``Error: time limit exceeded (5 s)``. The text is at most ``max_chars``
    characters; truncation cuts the output, never the error line.
    """
    body = result.stdout
    if result.stderr:
        body += ("\n" if body and not body.endswith("\n") else "") + result.stderr
    tail = f"Error: {result.error}" if _needs_error_line(result) else ""
    if not tail:
        return _truncate(body, max_chars) if body else NO_OUTPUT
    body = _truncate(body, max(0, max_chars - len(tail) - 1))
    if not body:
        return tail[:max_chars]
    return body + ("" if body.endswith("\n") else "\n") + tail


class CodeInterpreter:
    """The ``code_interpreter`` tool: schema, sandbox limits and backend in one object.

    Calling it with the model's ``code`` argument returns the observation text;
    :meth:`run` returns the full :class:`SandboxResult`.
    """

    name = "code_interpreter"
    schema = CODE_INTERPRETER_SCHEMA

    def __init__(self, limits: SandboxLimits | None = None, backend: str = "auto") -> None:
        self.limits = limits or SandboxLimits()
        self.backend = backend

    def run(self, code: str, variables: Mapping[str, str] | None = None) -> SandboxResult:
        """Run the model's ``code`` (a Markdown fence is unwrapped), with ``variables`` defined first."""
        return run_python(extract_code(code), limits=self.limits, backend=self.backend, variables=variables)

    def __call__(self, code: str) -> str:
        return observation_text(self.run(code), self.limits.max_output_chars)


code_interpreter = CodeInterpreter()
