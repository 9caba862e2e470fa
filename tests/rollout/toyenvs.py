"""Small real environments for the rollout tests: a ReAct counting game and a
calculator tool in the Hermes tool-call format. Both record every response text
they receive, so tests can compare the engine's token rows with what the
environment was actually sent."""

from __future__ import annotations

import re
from typing import Any

from spear.envs.actions import format_react, format_tool_call, parse_react, parse_tool_calls
from spear.envs.base import Env, StepResult, step_info

FAIL_SEED = 13  # CountEnv raises on its second step for this seed


class CountEnv(Env):
    """Bring the counter from ``seed % 5 + 2`` down to 0 with ``decrement``.

    ``wait`` does nothing; anything else is an invalid action. Reward 10 when won.
    """

    name = "count"
    action_format = "react"
    max_turns = 4

    def __init__(self, split: str = "train") -> None:
        super().__init__(split)
        self.received: list[str] = []
        self.observations: list[str] = []

    def reset(self, seed: int) -> tuple[str, dict[str, Any]]:
        self.seed, self.count, self.turn = seed, seed % 5 + 2, 0
        self.instruction = "bring the counter to zero"
        self.received, self.observations = [], [self._obs()]
        return self._obs(), {"instruction": self.instruction}

    def _obs(self) -> str:
        return f"The counter shows {self.count}."

    @property
    def admissible_actions(self) -> list[str]:
        return ["decrement", "wait"]

    def step(self, action_text: str) -> StepResult:
        self.received.append(action_text)
        self.turn += 1
        if self.seed == FAIL_SEED and self.turn == 2:
            raise RuntimeError("the counter broke")
        parsed = parse_react(action_text, self.admissible_actions)
        if parsed.action == "decrement" and not parsed.invalid:
            self.count -= 1
        won = self.count == 0
        obs = f"Invalid action ({parsed.error})." if parsed.invalid else self._obs()
        self.observations.append(obs)
        info = step_info(
            won=won, score=float(won), invalid_action=parsed.invalid, tool_calls=int(not parsed.invalid)
        )
        return StepResult(obs, 10.0 if won else 0.0, won or self.turn >= self.max_turns, info)

    def solver(self) -> str:
        return format_react("decrement", "the counter is above zero")


CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an integer expression with + - *.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}
_EXPRESSION = re.compile(r"^[\d\s+\-*()]{1,64}$")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def _calculate(expression: str) -> str:
    if not _EXPRESSION.match(expression):
        return "Error: unsupported expression"
    try:
        return str(eval(expression, {"__builtins__": {}}))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError):
        return "Error: malformed expression"


class CalcEnv(Env):
    """Answer ``a * b + c`` in ``\\boxed{}``; a calculator tool is available.

    A response with a ``\\boxed{}`` answer ends the episode (reward +1 or -1);
    one with neither a call nor an answer gets a reminder and the episode goes on.
    """

    name = "calc"
    action_format = "tool_call"
    max_turns = 3

    def __init__(self, split: str = "train") -> None:
        super().__init__(split)
        self.received: list[str] = []
        self.observations: list[str] = []

    def reset(self, seed: int) -> tuple[str, dict[str, Any]]:
        a, b, c = seed % 7 + 2, seed % 5 + 3, seed % 11
        self.answer, self.turn = a * b + c, 0
        self.instruction = f"What is {a} * {b} + {c}? Put the answer in \\boxed{{}}."
        self.received, self.observations = [], [self.instruction]
        return self.instruction, {"instruction": self.instruction}

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [CALCULATOR]

    def step(self, action_text: str) -> StepResult:
        self.received.append(action_text)
        self.turn += 1
        parsed = parse_tool_calls(action_text, self.tools)
        last_turn = self.turn >= self.max_turns
        if parsed.error is not None:
            return self._observe(f"Error: {parsed.error}", 0.0, last_turn, step_info(invalid_action=True))
        if parsed.calls:
            expression = parsed.calls[0].arguments["expression"]
            return self._observe(_calculate(expression), 0.0, last_turn, step_info(tool_calls=1))
        boxed = _BOXED.findall(parsed.content)
        if not boxed:
            reminder = "Call the calculator or give the answer in \\boxed{}."
            return self._observe(reminder, 0.0, last_turn, step_info(invalid_action=True))
        won = boxed[-1].strip() == str(self.answer)
        return self._observe("", 1.0 if won else -1.0, True, step_info(won=won, score=float(won)))

    def _observe(self, observation: str, reward: float, done: bool, info: dict[str, Any]) -> StepResult:
        self.observations.append(observation)
        return StepResult(observation, reward, done, info)

    def solver(self) -> str:
        if self.turn == 0:
            return format_tool_call("calculator", {"expression": self.instruction.split("?")[0][8:]})
        return f"The answer is \\boxed{{{self.answer}}}."


class Recorder:
    """A factory that keeps the environments it builds (slot order = build order)."""

    def __init__(self, env_class: type[Env]) -> None:
        self.env_class = env_class
        self.envs: list[Env] = []

    def __call__(self, **options: Any) -> Env:
        env = self.env_class(**options)
        self.envs.append(env)
        return env


class ParityEnv(Env):
    """Won as soon as a response has an even number of characters (so a random
    model wins about half of its turns): exercises the success path."""

    name = "parity"
    action_format = "react"
    max_turns = 3

    def __init__(self, split: str = "train") -> None:
        super().__init__(split)
        self.received: list[str] = []

    def reset(self, seed: int) -> tuple[str, dict[str, Any]]:
        self.turn, self.received = 0, []
        self.instruction = "answer with an even number of characters"
        return f"Round {seed}.", {"instruction": self.instruction}

    def step(self, action_text: str) -> StepResult:
        self.received.append(action_text)
        self.turn += 1
        won = len(action_text) % 2 == 0
        observation = "Even: you win." if won else "Odd: try again."
        return StepResult(
            observation,
            10.0 if won else 0.0,
            won or self.turn >= self.max_turns,
            step_info(won=won, score=float(won)),
        )

    def solver(self) -> str:
        return "ok"
