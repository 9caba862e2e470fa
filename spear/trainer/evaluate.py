"""Evaluation on the held-out split: success rate and score with 95% confidence intervals,
and the change between two evaluations of the same episodes (paired by episode)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spear.rollout.batch import TrajectoryRecord
from spear.rollout.engine import RolloutEngine
from spear.trainer.checkpoint import atomic_write_text


@dataclass
class EvalResult:
    episodes: int
    success_rate: float
    success_ci: tuple[float, float]
    score: float
    score_ci: tuple[float, float]
    tool_calls: float
    turns: float

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.episodes == 0:
            return "no episode completed (every environment failed): no success rate"
        lo, hi = self.success_ci
        slo, shi = self.score_ci
        # one episode has no spread: its score gets no interval rather than "nan-nan"
        score_ci = f"95% CI {slo:.3f}-{shi:.3f}" if self.episodes > 1 else "one episode, no interval"
        return (
            f"success {100 * self.success_rate:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}), "
            f"score {self.score:.3f} ({score_ci}), {self.episodes} episodes"
        )


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0% and 100% the bound is exactly 0 or 1; in floats it can land a hair inside
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def mean_interval(
    values: list[float], z: float = 1.959964, *, bounds: tuple[float, float] | None = None
) -> tuple[float, float]:
    """Normal-approximation interval of a mean: mean +- z * sample std / sqrt(n), cut to
    ``bounds`` (the range the values live in, e.g. (0, 1) for scores: a mean cannot leave it)."""
    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    lo, hi = mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n)
    if bounds is not None:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return (lo, hi)


def play_held_out(
    engine: RolloutEngine, env_name: str, episodes: int, *, batch_size: int
) -> list[TrajectoryRecord]:
    """Play tasks ``0 .. episodes-1`` of ``env_name`` once each; one record per episode.

    ``engine`` must have ``group_size=1`` and ``env_options`` with ``split="eval"``
    (eval tasks are disjoint from training tasks by content); its temperature decides
    greedy vs sampled evaluation. Task seeds are fixed, so every evaluation sees the
    same tasks.
    """
    if engine.env_options.get("split") != "eval":
        raise ValueError("evaluate needs an engine whose env_options hold split='eval'")
    if engine.config.group_size != 1:
        raise ValueError("evaluate needs an engine with group_size=1")
    records = []
    for start in range(0, episodes, batch_size):
        seeds = list(range(start, min(start + batch_size, episodes)))
        records += engine.collect(env_name, seeds, step=10**9 + start).trajectories
    return records


EPISODE_FIELDS = ("won", "score", "turns", "tool_calls", "failed")


def episode_outcomes(records: list[TrajectoryRecord]) -> dict[str, list]:
    """Per-episode outcomes of held-out play, column by column (JSON-ready): what
    :func:`summarize` needs, so an evaluation can be stored and summarised again later."""
    return {name: [getattr(r, name) for r in records] for name in EPISODE_FIELDS}


def concat_outcomes(
    parts: Sequence[dict[str, list]], fields: Sequence[str] = EPISODE_FIELDS
) -> dict[str, list]:
    """Several evaluations' :func:`episode_outcomes` as one, the episodes of each part in
    turn (e.g. to pool the seeds of a sweep); only ``fields`` are kept."""
    return {field: [value for part in parts for value in part[field]] for field in fields}


def summarize(outcomes: dict[str, list]) -> EvalResult:
    """Success rate and score of the episodes in ``outcomes`` (:func:`episode_outcomes`),
    with 95% intervals; episodes whose environment failed are left out."""
    ok = [i for i, failed in enumerate(outcomes["failed"]) if not failed]
    n = len(ok)
    wins = sum(bool(outcomes["won"][i]) for i in ok)
    scores = [float(outcomes["score"][i]) for i in ok]
    return EvalResult(
        episodes=n,
        success_rate=wins / n if n else 0.0,
        success_ci=wilson_interval(wins, n),
        score=sum(scores) / n if n else 0.0,
        score_ci=mean_interval(scores, bounds=(0.0, 1.0)),  # scores are in [0, 1] (spear.envs.base)
        tool_calls=sum(outcomes["tool_calls"][i] for i in ok) / n if n else 0.0,
        turns=sum(outcomes["turns"][i] for i in ok) / n if n else 0.0,
    )


def evaluate(engine: RolloutEngine, env_name: str, episodes: int, *, batch_size: int) -> EvalResult:
    """Success rate and score of :func:`play_held_out`'s episodes, with 95% intervals
    (episodes whose environment failed are left out)."""
    return summarize(episode_outcomes(play_held_out(engine, env_name, episodes, batch_size=batch_size)))


# ----------------------------------------------------------------------------- paired by episode
EVAL_OUTCOMES = "eval_outcomes.json"  # a run's per-episode outcomes before and after RL


@dataclass(frozen=True)
class PairedGain:
    """Success after minus before on the same held-out episodes.

    Both evaluations play the same tasks, so most episodes have the same outcome twice and
    only the discordant ones carry the change: the interval and test below use that pairing
    and are tighter than comparing two independent Wilson intervals.
    """

    episodes: int
    gain: float  # after - before success rate
    ci: tuple[float, float]  # 95%, normal approximation of the paired difference
    won_after_only: int  # lost before, won after
    won_before_only: int  # won before, lost after
    p_value: float  # exact two-sided McNemar test

    def summary(self) -> str:
        if self.episodes == 0:
            return "no episode completed in both evaluations: no paired change"
        lo, hi = self.ci
        return (
            f"{100 * self.gain:+.1f} points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f}; "
            f"{self.won_after_only} episodes won only after, {self.won_before_only} only before; "
            f"McNemar p = {self.p_value:.3g})"
        )


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of ``b`` and ``c`` discordant pairs: under no change
    each discordant pair goes either way with probability 1/2 (binomial test on b + c)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_gain(before: dict[str, list], after: dict[str, list], z: float = 1.959964) -> PairedGain:
    """:class:`PairedGain` of two :func:`episode_outcomes` of the same episodes, in the same
    order; episodes whose environment failed in either evaluation are left out.

    With ``c`` episodes won only after, ``b`` only before and ``n`` episodes, the gain is
    ``(c - b) / n`` with variance ``((b + c) - (c - b)^2 / n) / n^2``.
    """
    if len(before["won"]) != len(after["won"]):
        raise ValueError(
            f"paired_gain needs the same episodes: {len(before['won'])} outcomes before, "
            f"{len(after['won'])} after"
        )
    pairs = [
        (bool(w0), bool(w1))
        for w0, w1, f0, f1 in zip(before["won"], after["won"], before["failed"], after["failed"], strict=True)
        if not (f0 or f1)
    ]
    n = len(pairs)
    c = sum(1 for w0, w1 in pairs if w1 and not w0)
    b = sum(1 for w0, w1 in pairs if w0 and not w1)
    gain = (c - b) / n if n else 0.0
    if n:
        half = z * math.sqrt(max(0.0, (b + c) - (c - b) ** 2 / n)) / n
        # a change of success rates lies in [-1, 1]; the normal approximation may step outside
        ci = (max(-1.0, gain - half), min(1.0, gain + half))
    else:
        ci = (float("nan"), float("nan"))
    return PairedGain(n, gain, ci, c, b, mcnemar_p(b, c))


def save_outcomes(run_dir: str | Path, outcomes: dict[str, Any]) -> None:
    """Write ``{"before": ..., "after": ...}`` (each :func:`episode_outcomes` or absent) to a
    run's ``eval_outcomes.json``, atomically."""
    atomic_write_text(Path(run_dir) / EVAL_OUTCOMES, json.dumps(outcomes) + "\n")


def load_outcomes(run_dir: str | Path) -> dict[str, Any]:
    """A run's stored outcomes (``{}`` for a run without the file, e.g. written before it existed)."""
    path = Path(run_dir) / EVAL_OUTCOMES
    return json.loads(path.read_text()) if path.is_file() else {}


def run_paired_gain(outcomes: dict[str, Any]) -> PairedGain | None:
    """The paired gain of a run's stored outcomes, or None unless both evaluations are there
    with the same number of episodes."""
    before, after = outcomes.get("before"), outcomes.get("after")
    if not before or not after or len(before["won"]) != len(after["won"]):
        return None
    return paired_gain(before, after)
