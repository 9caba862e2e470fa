"""``MathEnv``: math problems with a sandboxed ``code_interpreter`` (spec 4.4, ReTool setting).

Each turn the model either calls the tool (Hermes ``<tool_call>`` JSON; at most
one call runs per turn) and sees its output in a ``tool`` message, or answers.
A response without a tool call is the final answer: the last ``\\boxed{...}`` in
its final 100 characters is scored by the generator's own checker, reward +1 if
correct else -1 (spec 3.1 before the tool bonus, which ``spear.algo.rewards``
adds from the ``tool_calls`` counts reported here). With ``code_answers=True`` a
code run whose output ends with a ``\\boxed{...}`` line is the final answer too.
"""

from __future__ import annotations

import copy
import operator
from typing import Any

from spear.envs.actions import ToolCall, format_tool_call, parse_tool_calls
from spear.envs.base import Env, StepResult, step_info
from spear.envs.math.answers import ANSWER_WINDOW, last_boxed, strip_latex
from spear.envs.math.tasks import (
    DEFAULT_TASKS,
    TASKS,
    Problem,
    check_numbers,
    check_tasks,
    draw_problem,
    is_correct,
)
from spear.tools import CODE_INTERPRETER_SCHEMA, CodeInterpreter, SandboxLimits, observation_text
from spear.tools.sandbox import BACKENDS

ANSWER_FORMAT = "The answer format must be: \\boxed{...}, at the end of your final response."
QUESTION_VARIABLE = "In the code interpreter, the string variable `question` holds this question."
CODE_ANSWER = "Code whose output ends with a \\boxed{...} line gives the final answer."
CALL_HELP = (
    'Call the tool as <tool_call>{"name": "code_interpreter", "arguments": {"code": "..."}}</tool_call>, '
    "or give the final answer as \\boxed{...}."
)
EPISODE_OVER = "The episode is over; call reset() to start a new one."
TURN_LIMIT = "Turn limit reached without a final answer."


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class MathEnv(Env):
    """Math with a code interpreter over reasoning-gym problems (tool-call actions).

    Args:
        split: ``"train"`` or ``"eval"``; problems are split by question text (``task_split``).
        tasks: generator names (default :data:`DEFAULT_TASKS`; all: :data:`TASKS`).
        max_turns: assistant turns before the episode ends unanswered (default 8, spec 4.4).
        limits: sandbox limits per tool call (default :class:`SandboxLimits`: 5 s, 512 MB).
        backend: sandbox backend, ``"auto"``, ``"bwrap"`` or ``"rlimit"`` (docs/SANDBOX.md).
        numbers: ``"standard"`` or ``"small"`` (operands of 1-2 digits, for small models).
        question_in_sandbox: define ``question`` (the problem's text) in the sandbox before
            the model's code runs, and say so in the prompt, so that code can read the
            numbers instead of retyping them (for models that cannot copy numbers; the
            expert's programs then read it).
        code_answers: a code run that succeeds and whose output's last line holds a
            ``\\boxed{...}`` ends the episode with that answer, as if the model had written
            it (the prompt says so), so the program answers and the model need not copy the
            printed number (for models that cannot copy numbers; docs/envs/math.md).
    """

    name = "math"
    action_format = "tool_call"
    max_turns = 8
    reward_on_success = 1.0

    def __init__(
        self,
        split: str = "train",
        *,
        tasks: tuple[str, ...] | list[str] = DEFAULT_TASKS,
        max_turns: int = 8,
        limits: SandboxLimits | None = None,
        backend: str = "auto",
        numbers: str = "standard",
        question_in_sandbox: bool = False,
        code_answers: bool = False,
    ) -> None:
        super().__init__(split)
        self.tasks = check_tasks(tasks)
        self.numbers = check_numbers(numbers)
        self.max_turns = _positive_int("max_turns", max_turns)
        for name, flag in (("question_in_sandbox", question_in_sandbox), ("code_answers", code_answers)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be true or false, got {flag!r}")
        self.question_in_sandbox = question_in_sandbox
        self.code_answers = code_answers
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise ValueError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.interpreter = CodeInterpreter(limits, backend)
        self._tools = [copy.deepcopy(CODE_INTERPRETER_SCHEMA)]
        self.problem: Problem | None = None
        self.done = False
        self.num_tool_calls = 0
        self.last_tool_output: str | None = None
        self.last_tool_ok = False

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self._tools

    def reset(self, seed: int) -> tuple[str, dict[str, Any]]:
        """Start the problem of ``seed`` in this split; the observation is the question."""
        try:
            seed = operator.index(seed)
        except TypeError:
            raise ValueError(f"seed must be an integer, got {seed!r}") from None
        self.problem = draw_problem(self.tasks, seed, self.split, self.numbers)
        lines = [self.problem.question]
        lines += [QUESTION_VARIABLE] if self.question_in_sandbox else []
        lines += [ANSWER_FORMAT, CODE_ANSWER] if self.code_answers else [ANSWER_FORMAT]
        self.instruction = "\n".join(lines)
        self.turn, self.done, self.num_tool_calls = 0, False, 0
        self.last_tool_output, self.last_tool_ok = None, False
        info = {"instruction": self.instruction, "question": self.instruction, **self._info(self.instruction)}
        return self.instruction, info

    def step(self, action_text: str) -> StepResult:
        """Apply one assistant response; never raises on model output."""
        if self.problem is None:
            raise RuntimeError("call reset(seed) before step()")
        if self.done:
            return StepResult(EPISODE_OVER, 0.0, True, self._info(EPISODE_OVER, invalid_action=True))
        self.turn += 1
        parsed = parse_tool_calls(action_text, self._tools)
        if parsed.error is not None:
            return self._continue(f"Error: {parsed.error}. {CALL_HELP}", invalid=True, called=False)
        if parsed.calls:
            self.num_tool_calls += 1
            if self.turn >= self.max_turns:
                # as in the official agent loop, a call in the last turn counts but never runs
                return self._continue("", invalid=False, called=True)
            observation = self._run_tool(parsed.calls)
            printed = self._printed_answer()
            if printed is not None:
                return self._answer(printed, tool_calls=1)
            return self._continue(observation, invalid=False, called=True)
        return self._answer(action_text)

    def _run_tool(self, calls: list[ToolCall]) -> str:
        """Run the first call only (spec 4.4: one call per turn); keep its output for the solver."""
        try:
            result = self.interpreter.run(calls[0].arguments["code"], self._sandbox_variables())
        except OSError as exc:  # the host could not start a sandbox: report, do not crash the run
            self.last_tool_output, self.last_tool_ok = None, False
            return f"Error: the code interpreter could not start ({exc})."
        text = observation_text(result, self.interpreter.limits.max_output_chars)
        self.last_tool_output, self.last_tool_ok = text, result.ok
        if len(calls) > 1:
            text += f"\n(Only the first of {len(calls)} tool calls was run: one call per turn.)"
        return text

    def _last_printed_line(self) -> str:
        """The last non-empty line of the last tool output, stripped ("" when there is none)."""
        lines = [line.strip() for line in (self.last_tool_output or "").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def _printed_answer(self) -> str | None:
        """With ``code_answers``: the last output line of a successful run if it holds a box."""
        if not (self.code_answers and self.last_tool_ok):
            return None
        line = self._last_printed_line()
        return line if last_boxed(line) is not None else None

    def _sandbox_variables(self) -> dict[str, str]:
        assert self.problem is not None
        return {"question": self.problem.question} if self.question_in_sandbox else {}

    def _continue(self, observation: str, *, invalid: bool, called: bool) -> StepResult:
        """A turn without a final answer; at ``max_turns`` the episode ends with reward -1."""
        if self.turn >= self.max_turns:
            self.done = True
            observation = f"{observation}\n{TURN_LIMIT}".strip()
            info = self._info(observation, invalid_action=invalid, tool_calls=int(called))
            return StepResult(observation, -1.0, True, {**info, "ground_truth": self._truth()})
        info = self._info(observation, invalid_action=invalid, tool_calls=int(called))
        return StepResult(observation, 0.0, False, info)

    def _answer(self, text: str, **flags: Any) -> StepResult:
        """The final answer: strict last-box rule, the generator's scorer, reward +1 / -1.

        ``flags`` go into the step's info (``tool_calls=1`` for an answer a code run printed).
        """
        assert self.problem is not None
        boxed = last_boxed(text)
        answer = strip_latex(boxed) if boxed is not None else None
        won = is_correct(self.problem, answer)
        self.done = True
        if answer is None:
            observation = f"No \\boxed{{...}} answer in the last {ANSWER_WINDOW} characters."
        else:
            observation = "Correct." if won else "Incorrect."
        outcome = {"won": won, "score": float(won), "answer": answer, "ground_truth": self._truth()}
        info = self._info(observation, **flags, **outcome)
        return StepResult(observation, 1.0 if won else -1.0, True, info)

    def _truth(self) -> str:
        assert self.problem is not None
        return self.problem.ground_truth

    def _info(self, anchor_obs: str, **flags: Any) -> dict[str, Any]:
        task_type = self.problem.task if self.problem is not None else None
        return step_info(
            **flags, num_tool_calls_total=self.num_tool_calls, anchor_obs=anchor_obs, task_type=task_type
        )

    def solver(self) -> str:
        """The scripted expert: first a program that computes the answer, then box what it printed.

        It reads the tool output the environment returned (``last_tool_output``),
        never the ground truth; after a failed run it calls the tool again.
        """
        if self.done or self.problem is None:
            raise RuntimeError("the solver needs a running episode: call reset(seed)")
        if not self.last_tool_ok or not self.last_tool_output:
            code = TASKS[self.problem.task].program(self.problem.entry, paste=not self.question_in_sandbox)
            return "Let me compute this with Python.\n" + format_tool_call("code_interpreter", {"code": code})
        answer = self._last_printed_line()
        if last_boxed(answer) is None:  # a program that printed a bare answer: box it
            answer = f"\\boxed{{{answer}}}"
        # on a line of its own, the box tokenises as in the tool output it is copied from
        return f"The program printed the answer.\n{answer}"

    def tool_shy_response(self) -> str:
        """An agent that works the problem out in its head: the right answer, boxed, no tool.

        Imitating it teaches the form of a direct answer, not the arithmetic, so a small
        model that answers this way is mostly wrong: the tool-shy novice (docs/envs/math.md).
        """
        if self.done or self.problem is None:
            raise RuntimeError("the tool-shy response needs a running episode: call reset(seed)")
        return f"I can answer this without the tool.\n\\boxed{{{self._truth()}}}"
