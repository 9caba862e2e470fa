"""Tools the model can call; for now the sandboxed Python ``code_interpreter`` (spec 4.4).

See docs/SANDBOX.md for the security model and limits.
"""

from spear.tools.code_interpreter import (
    CODE_INTERPRETER_SCHEMA,
    CodeInterpreter,
    code_interpreter,
    extract_code,
    observation_text,
)
from spear.tools.sandbox import (
    SandboxLimits,
    SandboxResult,
    SandboxUnavailableError,
    detect_backend,
    run_python,
)

__all__ = [
    "CODE_INTERPRETER_SCHEMA",
    "CodeInterpreter",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailableError",
    "code_interpreter",
    "detect_backend",
    "extract_code",
    "observation_text",
    "run_python",
]
