"""Guess the number: a small environment of your own, trained from the command line.

    spear train --env examples.envs.guess_number:GuessNumberEnv env.options.high=32

The agent guesses a secret number in 1..``high``; after each wrong guess the game says
"higher" or "lower". Binary search wins in ceil(log2(high)) + 1 turns; ``solver()`` plays
it, so spear can build the embedded model's tokenizer and cold-start it from this expert
(docs/ENVIRONMENTS.md, "Your environment from the command line").
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

from spear.envs.actions import format_react, parse_react
from spear.envs.base import Env, StepResult, step_info, task_split


class GuessNumberEnv(Env):
    """Find the secret number by its higher/lower answers (react format: ``guess 17``).

    Options:
        high: the secret lies in 1..high (default 16).
        max_turns: the turn limit (default: what binary search needs, plus one).
        split: ``train`` or ``eval``; a secret belongs to one split only (by a hash of it).
    """

    name = "guess_number"
    action_format = "react"
    max_turns = 6

    def __init__(self, split: str = "train", high: int = 16, max_turns: int | None = None) -> None:
        super().__init__(split)
        if not isinstance(high, int) or high < 4:
            raise ValueError(f"high must be an integer >= 4, got {high!r}")
        self.high = high
        self.max_turns = max_turns or math.ceil(math.log2(high)) + 1
        self.secrets = [n for n in range(1, high + 1) if task_split(f"guess_number:{n}") == self.split]
        self.secret = 0
        self.low_bound, self.high_bound = 1, high

    @property
    def admissible_actions(self) -> list[str]:
        return [f"guess {n}" for n in range(self.low_bound, self.high_bound + 1)]

    def _observation(self, text: str) -> tuple[str, dict[str, Any]]:
        return text, {"instruction": self.instruction, "admissible_actions": self.admissible_actions}

    def reset(self, seed: int) -> tuple[str, dict[str, Any]]:
        self.secret = random.Random(seed).choice(self.secrets)
        self.turn, self.low_bound, self.high_bound = 0, 1, self.high
        self.instruction = f"find the secret number between 1 and {self.high}"
        return self._observation(f"The secret is a number between 1 and {self.high}.")

    def step(self, action_text: str) -> StepResult:
        self.turn += 1
        parsed = parse_react(action_text, self.admissible_actions)
        out_of_turns = self.turn >= self.max_turns
        if parsed.invalid:
            info = step_info(invalid_action=True, error=parsed.error)
            return StepResult(parsed.error or "Invalid action.", 0.0, out_of_turns, info)
        guess = int(re.search(r"\d+", parsed.action).group())
        won = guess == self.secret
        if won:
            text = f"{guess} is right!"
        elif guess < self.secret:
            self.low_bound, text = guess + 1, f"{guess} is too low: the secret is higher."
        else:
            self.high_bound, text = guess - 1, f"{guess} is too high: the secret is lower."
        info = step_info(won=won, score=float(won), tool_calls=1, admissible_actions=self.admissible_actions)
        return StepResult(text, self.reward_on_success if won else 0.0, won or out_of_turns, info)

    def solver(self) -> str:
        """Binary search: guess the middle of what the answers so far leave open."""
        middle = (self.low_bound + self.high_bound) // 2
        return format_react(f"guess {middle}", f"The secret lies in {self.low_bound}..{self.high_bound}.")
