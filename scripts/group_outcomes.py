"""How much learning signal a policy's groups carry: the share of groups whose copies all win,
all fail, or mix (only mixed groups give an outcome advantage), at given rollout temperatures;
and whether the tool-call bonus can act there (issue 36: "the tool bonus differs between
copies of a task"): the share of groups whose copies' bonuses differ, among all groups and
among the all-fail groups (where the bonus is the only reward that differs), and the mean
count the bonus pays for (turns or tool calls, ``algorithm.tool_reward.count``) of won and
lost episodes.

    .venv/bin/python scripts/group_outcomes.py [--model DIR] [--env household] [--groups 64] \\
        [--group-size 4] [--temperatures 0.7,1.0] [--threads 1] [overrides ...]

Plays ``--groups`` training tasks (seeds 1000, 1001, ...) ``--group-size`` times each with
the run settings of the ``spear`` preset plus ``overrides``; default model: ``model.path``
when given, else the shipped policy a run of the environment starts from
(``model.shipped``: the expert clone or the novice). The bonus is a run's at step 0 (full
weight, lambda_tool = 1, unless ``algorithm.tool_reward.schedule=none``). Where the
environment reports ``info["task_type"]`` (household, math, ALFWorld), the same shares are
printed per task type.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from spear.envs import make
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import shipped_policy_dir
from spear.rollout.engine import RolloutEngine
from spear.trainer.config import load_config
from spear.trainer.loop import rollout_config
from spear.trainer.method import Method


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--env", default="household")
    parser.add_argument("--groups", type=int, default=64)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--temperatures", default="0.7,1.0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config("spear", [f"env.name={args.env}", *args.overrides])
    shipped, layout = config["model"]["shipped"], config["rollout"]["layout"]
    start = args.model or config["model"]["path"] or shipped_policy_dir(args.env, shipped, layout)
    model, tokenizer = load_model_and_tokenizer(start)
    seeds = list(range(1000, 1000 + args.groups))
    task_types, action_format = _task_types(args.env, config["env"]["options"], seeds)
    method = Method(config, tokenizer, action_format)
    for temperature in (float(t) for t in args.temperatures.split(",")):
        engine = RolloutEngine(
            model,
            tokenizer,
            rollout_config(config, group_size=args.group_size, temperature=temperature, seed=config["seed"]),
            env_options={**config["env"]["options"], "split": "train"},
        )
        trajectories = []
        for chunk, first in enumerate(range(0, len(seeds), 16)):
            trajectories += engine.collect(args.env, seeds[first : first + 16], step=chunk).trajectories
        engine.close()
        wins = np.array([t.won for t in trajectories]).reshape(-1, args.group_size)
        won = wins.sum(axis=1)
        print(f"T={temperature}: {_shares(won, args.group_size)} ({args.groups} groups of {args.group_size})")
        bonus = method.tool_bonuses(trajectories, 0).reshape(wins.shape)
        count = config["algorithm"]["tool_reward"]["count"]
        counts = np.array([getattr(t, count) for t in trajectories])
        print(f"  tool bonus: {_bonus_spread(bonus, wins, counts, count)}")
        for name in sorted(set(task_types) - {None}):
            of_type = won[np.array([t == name for t in task_types])]
            print(f"  {name}: {_shares(of_type, args.group_size)} ({len(of_type)} groups)")


def _task_types(env_name: str, options: dict, seeds: list[int]) -> tuple[list[str | None], str]:
    """Each training task's ``info["task_type"]`` at reset (None where the env reports none),
    and the environment's action format."""
    env = make(env_name, **{**options, "split": "train"})
    try:
        return [env.reset(seed)[1].get("task_type") for seed in seeds], env.action_format
    finally:
        env.close()


def _shares(won: np.ndarray, group_size: int) -> str:
    """Success and the shares of all-win, all-fail and mixed groups, from wins per group."""
    return (
        f"success {won.mean() / group_size:.3f}; groups all-win {(won == group_size).mean():.2f}, "
        f"all-fail {(won == 0).mean():.2f}, mixed {((won > 0) & (won < group_size)).mean():.2f}"
    )


def _bonus_spread(bonus: np.ndarray, wins: np.ndarray, counts: np.ndarray, count: str) -> str:
    """Whether the tool bonus a run pays at step 0 (``[groups, copies]`` ``bonus``, spec 3.1)
    differs between a group's copies, and the mean ``count`` (the n_k it pays for) of won and
    lost episodes."""
    differs = bonus.max(axis=1) > bonus.min(axis=1)
    all_fail = ~wins.any(axis=1)
    won, lost = counts[wins.reshape(-1)], counts[~wins.reshape(-1)]
    return (
        f"differs between copies in {differs.mean():.2f} of groups, "
        f"{differs[all_fail].mean() if all_fail.any() else float('nan'):.2f} of all-fail groups; "
        f"mean {count} {won.mean() if len(won) else float('nan'):.2f} won, "
        f"{lost.mean() if len(lost) else float('nan'):.2f} lost"
    )


if __name__ == "__main__":
    main()
