"""Parsing model output into environment actions (spec 3.10, 4.1, 4.4).

Two formats:

* ``react``: ``<think>...</think><action>...</action>``, the verl-agent format of
  ALFWorld / WebShop. The action is lower-cased, whitespace-collapsed and
  projected onto the admissible actions.
* ``tool_call``: Hermes / Qwen JSON function calls
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, checked against
  JSON tool schemas.

Nothing here raises on model output: every failure is reported in the result's
``error`` field so that the environment can turn it into an error observation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_ACTION_CHARS = 512
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\u3000-\u303f\uff00-\uffef]")
_WS = re.compile(r"\s+")


@dataclass
class ReactAction:
    """A parsed ReAct response.

    ``action`` is the normalised action text (None when absent); ``invalid`` is
    the invalid-action flag of spec 3.10; ``error`` says why.
    """

    action: str | None
    invalid: bool
    error: str | None = None


def normalize_action(text: str) -> str:
    return _WS.sub(" ", text.strip().lower())


def _last_block(text: str, open_tag: str, close_tag: str, start: int = 0) -> str | None:
    end = text.rfind(close_tag)
    if end < start:
        return None
    begin = text.rfind(open_tag, start, end)
    if begin < 0:
        return None
    return text[begin + len(open_tag) : end]


def parse_react(
    text: str,
    admissible: list[str] | None = None,
    *,
    require_think: bool = True,
) -> ReactAction:
    """Extract and project the action of a ReAct response.

    Invalid when: the ``<action>`` block is missing or empty, ``<think>...</think>``
    is missing (if ``require_think``), the action holds CJK characters (spec
    3.10), or it is not one of ``admissible`` (when a list is given). The action
    is searched after the last ``</think>`` when there is one.
    """
    if not isinstance(text, str):
        return ReactAction(None, True, "response is not text")
    think_end = text.rfind("</think>")
    search_from = think_end + len("</think>") if think_end >= 0 else 0
    raw = _last_block(text, "<action>", "</action>", search_from)
    if raw is None:
        return ReactAction(None, True, "no <action>...</action> block found")
    action = normalize_action(raw)
    if not action:
        return ReactAction(None, True, "the <action> block is empty")
    if len(action) > MAX_ACTION_CHARS:
        return ReactAction(None, True, f"the action is longer than {MAX_ACTION_CHARS} characters")
    if _CJK.search(action):
        return ReactAction(action, True, "the action contains CJK characters")
    if require_think and (think_end < 0 or text.rfind("<think>", 0, think_end) < 0):
        return ReactAction(action, True, "no <think>...</think> block found")
    if admissible is not None and action not in {normalize_action(a) for a in admissible}:
        return ReactAction(action, True, f"'{action}' is not an admissible action")
    return ReactAction(action, False)


def format_react(action: str, think: str = "") -> str:
    """Render an action in the ReAct format (used by scripted solvers)."""
    return f"<think>{think}</think><action>{action}</action>"


def plan_response(plan: list[str], *, no_plan: str, remaining: str) -> str:
    """A ReAct response that follows a planner: its first command, or ``look`` when the
    plan is empty. ``no_plan`` is the think text then; ``remaining`` completes
    "<n> step(s) <remaining>; next: <command>." (the TextWorld and ALFWorld experts)."""
    if not plan:
        return format_react("look", no_plan)
    steps = "step" if len(plan) == 1 else "steps"
    return format_react(plan[0], f"{len(plan)} {steps} {remaining}; next: {plan[0]}.")


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class ParsedToolCalls:
    """A parsed tool-calling response.

    ``calls`` are the well-formed calls in order; ``content`` is the response text
    outside the ``<tool_call>`` blocks; ``error`` describes the first malformed call.
    """

    calls: list[ToolCall] = field(default_factory=list)
    content: str = ""
    error: str | None = None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _type_ok(value: Any, json_type: str | list[str] | None) -> bool:
    if json_type is None:
        return True
    types = [json_type] if isinstance(json_type, str) else list(json_type)
    for t in types:
        py = _JSON_TYPES.get(t)
        if py is None:
            continue
        if isinstance(value, bool) and t in ("integer", "number"):
            continue
        if isinstance(value, py):
            return True
    return False


def _schema_function(schema: dict[str, Any]) -> dict[str, Any]:
    return schema.get("function", schema)


def validate_call(call: Any, tools: list[dict[str, Any]]) -> tuple[ToolCall | None, str | None]:
    """Check one decoded call object against the tool schemas."""
    if not isinstance(call, dict):
        return None, "a tool call must be a JSON object with 'name' and 'arguments'"
    name = call.get("name")
    if not isinstance(name, str):
        return None, "the tool call has no string 'name'"
    functions = {_schema_function(t).get("name"): _schema_function(t) for t in tools}
    if name not in functions:
        known = ", ".join(sorted(str(k) for k in functions))
        return None, f"unknown tool '{name[:64]}' (available: {known})"
    arguments = call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (json.JSONDecodeError, RecursionError):
            return None, f"the arguments of '{name}' are not valid JSON"
    if not isinstance(arguments, dict):
        return None, f"the arguments of '{name}' must be a JSON object"
    params = functions[name].get("parameters", {}) or {}
    properties = params.get("properties", {}) or {}
    for required in params.get("required", []) or []:
        if required not in arguments:
            return None, f"'{name}' is missing the required argument '{required}'"
    for key, value in arguments.items():
        if key not in properties:
            return None, f"'{name}' has no argument '{str(key)[:64]}'"
        if not _type_ok(value, properties[key].get("type")):
            expected = properties[key].get("type")
            return None, f"argument '{key}' of '{name}' must be of type {expected}"
    return ToolCall(name, arguments), None


def parse_tool_calls(text: str, tools: list[dict[str, Any]]) -> ParsedToolCalls:
    """Extract ``<tool_call>{json}</tool_call>`` blocks and validate them.

    A block that is unterminated, not JSON, names an unknown tool or passes
    arguments of the wrong type sets ``error`` (parsing stops there); valid calls
    before it are kept.
    """
    if not isinstance(text, str):
        return ParsedToolCalls(error="response is not text")
    out = ParsedToolCalls()
    pieces: list[str] = []
    pos = 0
    while True:
        start = text.find("<tool_call>", pos)
        if start < 0:
            pieces.append(text[pos:])
            break
        pieces.append(text[pos:start])
        end = text.find("</tool_call>", start)
        if end < 0:
            out.error = "a <tool_call> block is not closed with </tool_call>"
            break
        body = text[start + len("<tool_call>") : end].strip()
        pos = end + len("</tool_call>")
        try:
            decoded = json.loads(body)
        except (json.JSONDecodeError, RecursionError):
            out.error = "the <tool_call> block is not valid JSON"
            break
        call, error = validate_call(decoded, tools)
        if error is not None:
            out.error = error
            break
        out.calls.append(call)  # type: ignore[arg-type]
    out.content = "".join(pieces).strip()
    return out


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """Render one call in the Hermes format (used by scripted solvers)."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"
