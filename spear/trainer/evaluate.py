"""Evaluation on the held-out split: success rate and score with 95% confidence intervals."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from spear.rollout.batch import TrajectoryRecord
from spear.rollout.engine import RolloutEngine


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
        lo, hi = self.success_ci
        slo, shi = self.score_ci
        return (
            f"success {100 * self.success_rate:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}), "
            f"score {self.score:.3f} (95% CI {slo:.3f}-{shi:.3f}), {self.episodes} episodes"
        )


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: list[float], z: float = 1.959964) -> tuple[float, float]:
    """Normal-approximation interval of a mean: mean +- z * sample std / sqrt(n)."""
    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return (mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n))


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
        score_ci=mean_interval(scores),
        tool_calls=sum(outcomes["tool_calls"][i] for i in ok) / n if n else 0.0,
        turns=sum(outcomes["turns"][i] for i in ok) / n if n else 0.0,
    )


def evaluate(engine: RolloutEngine, env_name: str, episodes: int, *, batch_size: int) -> EvalResult:
    """Success rate and score of :func:`play_held_out`'s episodes, with 95% intervals
    (episodes whose environment failed are left out)."""
    return summarize(episode_outcomes(play_held_out(engine, env_name, episodes, batch_size=batch_size)))
