"""Eval success by task type, before and after RL, pooled over a sweep's seeds.

    .venv/bin/python scripts/by_task_type.py sweeps/household-90 [--presets grpo,spear]

Reads each finished run's ``eval_outcomes.json`` (per-episode outcomes of the evaluation
before RL and the final one) and recovers the task type of eval episode ``i`` from
``make(env, split="eval", **options).reset(i)`` (the evaluation plays task seeds
0, 1, ...; docs/COMPARE.md). Prints a markdown table: one row per preset, one column per
task type, ``before -> after`` in percent; as in the runs' own summaries, an episode whose
environment failed in either evaluation is left out. Environments that report
``info["task_type"]`` only (household, math, ALFWorld).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from spear.envs import make
from spear.experiments.sweep import read_sweep
from spear.trainer.evaluate import load_outcomes
from spear.trainer.run import saved_config


def task_types(run_dir: Path, episodes: int) -> list[str]:
    """The task type of eval episodes 0 .. episodes-1 of the run's environment."""
    config = saved_config(run_dir)
    env = make(config["env"]["name"], split="eval", **config["env"]["options"])
    types = []
    for seed in range(episodes):
        _, info = env.reset(seed)
        if "task_type" not in info:
            raise SystemExit(f"{config['env']['name']} does not report info['task_type']")
        types.append(str(info["task_type"]))  # ALFWorld reports None for a game it cannot type
    return types


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--presets", default=None, help="comma-separated; default: every preset of the sweep")
    args = parser.parse_args(argv)
    files = sorted((args.sweep / "runs").glob("*-seed*/eval_outcomes.json"))
    if not files:
        raise SystemExit(f"no finished run with eval_outcomes.json under {args.sweep / 'runs'}")
    outcomes = {f.parent.name: load_outcomes(f.parent) for f in files}
    presets = args.presets.split(",") if args.presets else list(read_sweep(args.sweep)[0].presets)
    lengths = {name: len(record["after"]["won"]) for name, record in outcomes.items()}
    if len(set(lengths.values())) > 1:
        raise SystemExit(f"the runs' final evaluations differ in length: {lengths}")
    episodes = next(iter(lengths.values()))
    types = task_types(files[0].parent, episodes)
    count = Counter(types)
    columns = sorted(count)
    print("| preset | " + " | ".join(f"{t} ({count[t]})" for t in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for preset in presets:
        tally = {t: [0, 0, 0] for t in columns}  # wins before, wins after, episodes
        for name, record in outcomes.items():
            if name.rsplit("-seed", 1)[0] != preset:
                continue
            before, after = record["before"], record["after"]
            for i, t in enumerate(types):
                if before["failed"][i] or after["failed"][i]:
                    continue
                tally[t][0] += before["won"][i]
                tally[t][1] += after["won"][i]
                tally[t][2] += 1
        cells = [f"{100 * b / n:.0f} -> {100 * a / n:.0f}" if n else "n/a" for b, a, n in tally.values()]
        print(f"| {preset} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
