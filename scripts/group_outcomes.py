"""How much learning signal a policy's groups carry: the share of groups whose copies all win,
all fail, or mix (only mixed groups give an outcome advantage), at given rollout temperatures.

    .venv/bin/python scripts/group_outcomes.py [--model DIR] [--env household] [--groups 64] \\
        [--group-size 4] [--temperatures 0.7,1.0] [--threads 1] [overrides ...]

Plays ``--groups`` training tasks (seeds 1000, 1001, ...) ``--group-size`` times each with
the run settings of the ``spear`` preset plus ``overrides``; default model: the shipped
starting policy of the environment. Where the environment reports ``info["task_type"]``
(household, math, ALFWorld), the same shares are printed per task type.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from spear.envs import make
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import starting_policy_dir
from spear.rollout.engine import RolloutEngine
from spear.trainer.config import load_config
from spear.trainer.loop import rollout_config


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
    model, tokenizer = load_model_and_tokenizer(args.model or starting_policy_dir(args.env))
    seeds = list(range(1000, 1000 + args.groups))
    task_types = _task_types(args.env, config["env"]["options"], seeds)
    for temperature in (float(t) for t in args.temperatures.split(",")):
        engine = RolloutEngine(
            model,
            tokenizer,
            rollout_config(config, group_size=args.group_size, temperature=temperature, seed=config["seed"]),
            env_options={**config["env"]["options"], "split": "train"},
        )
        wins = []
        for chunk, start in enumerate(range(0, len(seeds), 16)):
            batch = engine.collect(args.env, seeds[start : start + 16], step=chunk)
            wins.append(np.array([t.won for t in batch.trajectories]).reshape(-1, args.group_size))
        engine.close()
        won = np.concatenate(wins).sum(axis=1)
        print(f"T={temperature}: {_shares(won, args.group_size)} ({args.groups} groups of {args.group_size})")
        for name in sorted(set(task_types) - {None}):
            of_type = won[np.array([t == name for t in task_types])]
            print(f"  {name}: {_shares(of_type, args.group_size)} ({len(of_type)} groups)")


def _task_types(env_name: str, options: dict, seeds: list[int]) -> list[str | None]:
    """Each training task's ``info["task_type"]`` at reset (None where the env reports none)."""
    env = make(env_name, **{**options, "split": "train"})
    try:
        return [env.reset(seed)[1].get("task_type") for seed in seeds]
    finally:
        env.close()


def _shares(won: np.ndarray, group_size: int) -> str:
    """Success and the shares of all-win, all-fail and mixed groups, from wins per group."""
    return (
        f"success {won.mean() / group_size:.3f}; groups all-win {(won == group_size).mean():.2f}, "
        f"all-fail {(won == 0).mean():.2f}, mixed {((won > 0) & (won < group_size)).mean():.2f}"
    )


if __name__ == "__main__":
    main()
