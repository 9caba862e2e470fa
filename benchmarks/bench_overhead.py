"""SPEAR's runtime overhead over its base method, measured in one process (issue 5, spec 5).

    .venv/bin/python benchmarks/bench_overhead.py --model <run>/sft_model [--steps 10] [overrides ...]

Two trainers, ``spear`` and ``drbot`` (Dr.BoT, SPEAR's base), start from copies of the
same model and train in alternating steps (spear step t, then drbot step t), so both
see the same machine load. Reports the median wall time per step of each, split into
rollout / update / replay, and the ratio spear / drbot (the paper: "negligible runtime
overhead"; our target is <= 1.15). The rollout phase depends on what each policy
generates, so the ratio of the non-rollout time is reported as well. The SIL update runs
only on steps where the buffer fires, so the total over all steps is the headline number.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import torch

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer

PHASES = ("rollout", "log_prob", "update", "replay")


def make_trainer(preset: str, model, tokenizer, steps: int, overrides: list[str], run_dir: Path) -> Trainer:
    config = load_config(
        preset,
        [
            "env.name=household",
            f"steps={steps}",
            "eval.final_episodes=0",
            "eval.every=0",
            "checkpoint.every=0",
            *overrides,
        ],
    )
    return Trainer(config, model, tokenizer, run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="the starting model, e.g. a run's sft_model")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--method", default="spear")
    parser.add_argument("--base", default="drbot")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    model, tokenizer = load_model_and_tokenizer(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            name: make_trainer(
                name, copy.deepcopy(model), tokenizer, args.steps, args.overrides, Path(tmp) / name
            )
            for name in (args.method, args.base)
        }
        metrics: dict[str, list[dict[str, float]]] = {name: [] for name in trainers}
        for step in range(1, args.steps + 1):
            for name, trainer in trainers.items():
                metrics[name].append(trainer.train_step(step))

    def median(name: str, key: str) -> float:
        return statistics.median(m.get(key, 0.0) for m in metrics[name])

    def non_rollout(name: str) -> float:
        return statistics.median(m.get("time/step", 0.0) - m.get("time/rollout", 0.0) for m in metrics[name])

    print(
        f"{args.method} vs {args.base}, {args.steps} alternating steps each, "
        f"{torch.get_num_threads()} threads, median per step"
    )
    print("| | " + " | ".join(trainers) + " | ratio |")
    print("|---|---|---|---|")
    for label, value in [
        ("total time of all steps (s)", lambda n: sum(m.get("time/step", 0.0) for m in metrics[n])),
        ("step time (s)", lambda n: median(n, "time/step")),
        *[(f"{p} (s)", lambda n, p=p: median(n, f"time/{p}")) for p in PHASES],
        ("step time without rollout (s)", non_rollout),
        ("generated tokens / step", lambda n: median(n, "rollout/generated_tokens")),
        ("SIL fired (steps)", lambda n: sum(m.get("sil/fired", 0.0) for m in metrics[n])),
    ]:
        a, b = value(args.method), value(args.base)
        ratio = f"{a / b:.2f}" if b else "n/a"
        print(f"| {label} | {a:.2f} | {b:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
