"""How much learning signal a policy's groups carry: the share of groups whose copies all win,
all fail, or mix (only mixed groups give an outcome advantage), at given rollout temperatures.

    .venv/bin/python scripts/group_outcomes.py [--model DIR] [--env household] [--groups 64] \\
        [--group-size 4] [--temperatures 0.7,1.0] [--threads 1] [overrides ...]

Plays ``--groups`` training tasks (seeds 1000, 1001, ...) ``--group-size`` times each with
the run settings of the ``spear`` preset plus ``overrides``; default model: the shipped
starting policy of the environment.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

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
        print(
            f"T={temperature}: success {np.concatenate(wins).mean():.3f}; groups all-win "
            f"{(won == args.group_size).mean():.2f}, all-fail {(won == 0).mean():.2f}, mixed "
            f"{((won > 0) & (won < args.group_size)).mean():.2f} ({args.groups} groups of {args.group_size})"
        )


if __name__ == "__main__":
    main()
