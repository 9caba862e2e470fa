"""The 'parity' environment of the trainer and experiment tests, registered on import.

It lives in a module of its own name on the tests' ``pythonpath`` (tests/support, set in
pyproject.toml), so a spawned sweep worker finds it as ``parity_env:ParityEnv`` too."""

from spear.envs import available, register
from spear.envs.actions import format_react
from spear.envs.base import Env, StepResult, step_info


class ParityEnv(Env):
    """A two-turn game whose reward depends on the sampled text (its length's parity), so
    even an untrained model gets reward variance within a group: the buffer fills and fires."""

    name, action_format, max_turns = "parity", "react", 2

    def reset(self, seed):
        self.turn, self.instruction = 0, "write an even number of characters"
        return "Write something.", {"instruction": self.instruction, "admissible_actions": None}

    def step(self, text):
        self.turn += 1
        won = len(text) % 2 == 0
        done = won or self.turn >= self.max_turns
        return StepResult(
            "Even!" if won else "Odd.",
            10.0 if won else 0.0,
            done,
            step_info(won=won, score=float(won), tool_calls=1),
        )

    def solver(self):
        return format_react("ok", "")


if "parity" not in available():
    register("parity", ParityEnv)
