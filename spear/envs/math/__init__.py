"""The ``math`` environment: reasoning-gym problems with a sandboxed code interpreter (spec 4.4)."""

from spear.envs.math.env import ANSWER_FORMAT, CODE_ANSWER, QUESTION_VARIABLE, MathEnv
from spear.envs.math.tasks import DEFAULT_TASKS, TASKS

__all__ = ["ANSWER_FORMAT", "CODE_ANSWER", "DEFAULT_TASKS", "QUESTION_VARIABLE", "TASKS", "MathEnv"]
