"""Where a household policy fails: success, turns and invalid actions per task type, and how
its failed episodes end.

    .venv/bin/python scripts/household_failures.py [--model DIR] [--episodes 256] \\
        [--temperature 0.4] [--threads 1] [overrides ...]

Plays held-out tasks ``0 .. episodes-1`` once each, as ``spear eval`` does (default model:
the shipped starting policy; settings: the ``spear`` preset plus ``overrides``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from spear.envs.household.generator import GeneratorConfig, generate
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import starting_policy_dir
from spear.rollout.engine import RolloutEngine
from spear.trainer.config import load_config
from spear.trainer.evaluate import play_held_out
from spear.trainer.loop import rollout_config


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config("spear", ["env.name=household", *args.overrides])
    options = config["env"]["options"]
    model, tokenizer = load_model_and_tokenizer(args.model or starting_policy_dir("household"))
    engine = RolloutEngine(
        model,
        tokenizer,
        rollout_config(config, group_size=1, temperature=args.temperature, seed=config["seed"]),
        env_options={**options, "split": "eval"},
    )
    records = play_held_out(engine, "household", args.episodes, batch_size=64)
    engine.close()
    generator = GeneratorConfig(
        **{k: options[k] for k in ("num_receptacles", "num_distractors", "task_types") if k in options}
    )
    by_type = defaultdict(list)
    for record in records:
        by_type[generate(record.seed, "eval", generator).goal.task_type].append(record)
    print("| task type | episodes | success | turns | invalid actions per episode |")
    print("|---|---|---|---|---|")
    for task_type, group in sorted(by_type.items(), key=lambda item: np.mean([r.won for r in item[1]])):
        print(
            f"| {task_type} | {len(group)} | {np.mean([r.won for r in group]):.1%} | "
            f"{np.mean([r.turns for r in group]):.1f} | {np.mean([r.invalid_actions for r in group]):.1f} |"
        )
    won = [r for r in records if r.won]
    lost = [r for r in records if not r.won]
    limit = config["rollout"]["max_turns"] or options["max_turns"]
    print(
        f"\nsuccess {len(won) / len(records):.1%} of {len(records)}; won episodes: "
        f"{np.mean([r.turns for r in won]):.1f} turns, "
        f"{np.mean([r.invalid_actions for r in won]):.1f} invalid; "
        f"failed episodes: {np.mean([r.turns for r in lost]):.1f} turns, "
        f"{np.mean([r.invalid_actions for r in lost]):.1f} invalid, "
        f"{np.mean([r.turns >= limit for r in lost]):.0%} ended at the {limit}-turn limit"
    )


if __name__ == "__main__":
    main()
