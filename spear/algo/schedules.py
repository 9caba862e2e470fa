"""Curriculum schedules: the fading tool-call reward and the rising SIL weight (spec 3.1, 3.4).

``t`` is the global training step (1-based in the official trainer; 0 is allowed).
Decay schedules go 1 -> 0 over ``total`` steps and stay at 0; warm-up schedules go
0 -> 1 and stay at 1. Select by name with :func:`schedule`::

    schedule("cosine", step, total, direction="decay")   # lambda_tool(t)
    schedule("cosine", step, total, direction="warmup")  # lambda_sil(t) / c
"""

from __future__ import annotations

import math
from collections.abc import Callable

from spear.algo._checks import check_choice

DIRECTIONS = ("decay", "warmup")


def _check(step: float, total: float) -> None:
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step >= 0):
        raise ValueError(f"step must be a finite number >= 0, got {step!r}")
    if not (isinstance(total, (int, float)) and math.isfinite(total) and total > 0):
        raise ValueError(f"total must be a finite number > 0, got {total!r}")


def cosine_decay(step: float, total: float) -> float:
    """(1 + cos(pi t / T)) / 2 for t <= T, else 0: 1 at t=0, 0.5 at T/2, 0 from T on (spec 3.1)."""
    _check(step, total)
    if step > total:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * step / total))


def cosine_warmup(step: float, total: float) -> float:
    """(1 - cos(pi t / T)) / 2 for t <= T, else 1: 0 at t=0, 1 from T on (spec 3.4)."""
    _check(step, total)
    if step > total:
        return 1.0
    return 0.5 * (1.0 - math.cos(math.pi * step / total))


def linear_decay(step: float, total: float) -> float:
    """max(0, 1 - t / T)."""
    _check(step, total)
    return max(0.0, 1.0 - step / total)


def linear_warmup(step: float, total: float) -> float:
    """min(1, t / T)."""
    _check(step, total)
    return min(1.0, step / total)


def constant(step: float, total: float) -> float:
    """Always 1 (``use_toolcall_reward: constant``; SIL at full weight from the start)."""
    _check(step, total)
    return 1.0


def none(step: float, total: float) -> float:
    """Always 0 (``use_toolcall_reward: none``)."""
    _check(step, total)
    return 0.0


SCHEDULES: dict[str, dict[str, Callable[[float, float], float]]] = {
    "cosine": {"decay": cosine_decay, "warmup": cosine_warmup},
    "linear": {"decay": linear_decay, "warmup": linear_warmup},
    "constant": {"decay": constant, "warmup": constant},
    "none": {"decay": none, "warmup": none},
}


def schedule(name: str, step: float, total: float, *, direction: str = "decay") -> float:
    """Value of schedule ``name`` (cosine, linear, constant, none) at ``step`` of ``total``."""
    check_choice("schedule", name, SCHEDULES)
    check_choice("direction", direction, DIRECTIONS)
    return SCHEDULES[name][direction](step, total)
