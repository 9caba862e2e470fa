"""Math problems from reasoning-gym generators where computing helps (spec 4.4 in small).

Each :class:`MathTask` names a reasoning-gym generator with a modest difficulty,
a filter for ill-posed items, the answer's accepted shape and the expert's program.
Problems are drawn per (seed, attempt) and kept only when ``task_split`` of their
question text matches the split, so train and eval problems are disjoint by content.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import reasoning_gym

from spear.envs.base import task_split
from spear.envs.math import programs

DATASET_SEED = 20250926
DATASET_SIZE = 10**9
MAX_ATTEMPTS = 10_000
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_COUNTDOWN = re.compile(r"[\d\s+\-*/()]+", re.ASCII)
_FACTORS = re.compile(r"\d+(×\d+)*", re.ASCII)
_MULTIPLY = re.compile(r"\\times|\\cdot|[*x·]")


def _integer(answer: str) -> str | None:
    """Canonical integer text ("1,024" and "+1024" become "1024"), or None."""
    text = answer.replace(",", "").replace(" ", "")
    return str(int(text)) if _INTEGER.fullmatch(text) and len(text) <= 60 else None


def _countdown_expression(answer: str) -> str | None:
    # reasoning-gym scores countdown with sympy's parse_expr, which evaluates Python:
    # only plain arithmetic may reach it, and no "**" (9**9**9 would never finish)
    return answer if _COUNTDOWN.fullmatch(answer) and "**" not in answer else None


def _factor_list(answer: str) -> str | None:
    text = _MULTIPLY.sub("×", answer).replace(" ", "")
    return " × ".join(text.split("×")) if _FACTORS.fullmatch(text) else None


def _exact_value_matches(entry: dict[str, Any]) -> bool:
    """basic_arithmetic labels use floor division; keep only items whose exact value is that label."""
    # the expression is reasoning-gym's own output (digits, operators, parentheses)
    expression = re.sub(r"\d+", lambda m: f"Fraction({m.group()})", entry["metadata"]["expression"])
    try:
        exact = eval(expression, {"Fraction": Fraction, "__builtins__": {}})
    except ZeroDivisionError:
        return False
    return str(exact) == entry["answer"]


@dataclass(frozen=True)
class MathTask:
    """One generator: its reasoning-gym config, answer canonicaliser and expert program.

    ``canonical`` maps a boxed answer to the form the generator's scorer expects, or
    to None when the answer has the wrong shape (then it is wrong without scoring).
    ``small`` overrides ``config`` for ``numbers="small"``: operands of 1-2 digits (or at
    most 100), for models too small to copy longer numbers (docs/envs/math.md).
    """

    name: str
    program: Callable[..., str]  # program(entry, paste=True) -> the expert's code (programs.py)
    canonical: Callable[[str], str | None] = _integer
    config: dict[str, Any] = field(default_factory=dict)
    accept: Callable[[dict[str, Any]], bool] = lambda entry: True
    small: dict[str, Any] = field(default_factory=dict)


TASKS: dict[str, MathTask] = {
    task.name: task
    for task in (
        MathTask(
            "basic_arithmetic",
            programs.arithmetic,
            config={"min_terms": 3, "max_terms": 5, "min_digits": 2, "max_digits": 3},
            accept=_exact_value_matches,
            small={"min_digits": 1, "max_digits": 2},
        ),
        MathTask(
            "chain_sum",
            programs.arithmetic,
            config={"min_terms": 4, "max_terms": 6, "min_digits": 3},
            small={"min_digits": 1, "max_digits": 2},
        ),
        MathTask(
            "countdown",
            programs.countdown,
            canonical=_countdown_expression,
            config={"min_numbers": 3, "max_numbers": 4},
        ),
        MathTask(
            "gcd",
            programs.gcd,
            config={"min_numbers": 2, "max_numbers": 3, "max_value": 10000},
            small={"max_value": 100},
        ),
        MathTask(
            "lcm",
            programs.lcm,
            config={"min_numbers": 2, "max_numbers": 3, "min_value": 2, "max_value": 1000},
            small={"max_value": 100},
        ),
        MathTask(
            "prime_factorization",
            programs.prime_factorization,
            canonical=_factor_list,
            config={"min_value": 100, "max_value": 99999},
        ),
        MathTask("count_primes", programs.count_primes, config={"min_n": 1, "max_n": 10000}),
    )
}
DEFAULT_TASKS: tuple[str, ...] = (
    "basic_arithmetic",
    "countdown",
    "prime_factorization",
    "count_primes",
    "lcm",
)


NUMBER_SIZES: tuple[str, ...] = ("standard", "small")


def check_tasks(tasks: Any) -> tuple[str, ...]:
    """Validate the ``tasks`` option: a non-empty sequence of known task names."""
    if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks:
        raise ValueError(f"tasks must be a non-empty list of task names from {sorted(TASKS)}, got {tasks!r}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"tasks: unknown task(s) {unknown}; available: {sorted(TASKS)}")
    return tuple(dict.fromkeys(tasks))


def check_numbers(numbers: Any) -> str:
    """Validate the ``numbers`` option."""
    if numbers not in NUMBER_SIZES:
        raise ValueError(f"numbers must be one of {', '.join(NUMBER_SIZES)}, got {numbers!r}")
    return numbers


@functools.cache
def dataset(name: str, numbers: str = "standard") -> Any:
    """The (virtual, lazily generated) reasoning-gym dataset of task ``name``; ``numbers="small"``
    applies the task's ``small`` overrides (a task without them is unchanged)."""
    task = TASKS[name]
    config = {**task.config, **task.small} if check_numbers(numbers) == "small" else task.config
    return reasoning_gym.create_dataset(name, seed=DATASET_SEED, size=DATASET_SIZE, **config)


@dataclass(frozen=True)
class Problem:
    task: str
    entry: dict[str, Any]
    numbers: str = "standard"

    @property
    def question(self) -> str:
        return str(self.entry["question"]).strip()

    @property
    def ground_truth(self) -> str:
        return str(self.entry["answer"])


def draw_problem(tasks: tuple[str, ...], seed: int, split: str, numbers: str = "standard") -> Problem:
    """The problem of ``seed`` in ``split``: candidates by (seed, attempt) until one fits."""
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"math:{seed}:{attempt}")
        task = TASKS[rng.choice(tasks)]
        entry = dataset(task.name, numbers)[rng.randrange(DATASET_SIZE)]
        problem = Problem(task.name, entry, numbers)
        if task.accept(entry) and task_split(problem.question) == split:
            return problem
    raise RuntimeError(f"no {split} problem among {MAX_ATTEMPTS} candidates of tasks {tasks} for seed {seed}")


def is_correct(problem: Problem, answer: str | None) -> bool:
    """The generator's own scorer gives full marks to the canonicalised answer."""
    if answer is None:
        return False
    canonical = TASKS[problem.task].canonical(answer)
    if canonical is None:
        return False
    try:
        return float(dataset(problem.task, problem.numbers).score_answer(canonical, problem.entry)) >= 1.0
    except Exception:  # a scorer bug on odd input must not end training: the answer is wrong
        return False
