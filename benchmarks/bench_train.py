"""Training-step cost of the default config on CPU, and how much of it is not model compute.

    .venv/bin/python benchmarks/bench_train.py [--steps 6] [--preset spear] [overrides ...]

Uses ``--model`` (e.g. a run's ``sft_model``) or builds an untrained embedded model, runs
``--steps`` RL steps of the preset and reports per step: wall time split into rollout /
log-prob / update / replay, generated tokens per second, and the trainer overhead: the
share of step time outside the model (forward passes timed with hooks during rollout;
update and replay phases count as model compute, being forward + backward + optimizer).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.embedded import build_embedded
from spear.trainer.loop import Trainer


class ForwardTimer:
    """Accumulates wall time spent inside ``model.forward`` (pre/post hooks on the top module)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.total = 0.0
        self._start = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._start = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--preset", default="spear")
    parser.add_argument("--model", help="a saved model; default: a fresh, untrained embedded model")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    config = load_config(
        args.preset,
        [
            "env.name=household",
            f"steps={args.steps}",
            "eval.final_episodes=0",
            "eval.every=0",
            "checkpoint.every=0",
            *args.overrides,
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            model, tokenizer = load_model_and_tokenizer(args.model)
        else:
            model, tokenizer = build_embedded(
                Path(tmp) / "model",
                config["env"]["name"],
                config["env"]["options"],
                config["model"]["embedded"],
                history_length=config["rollout"]["history_length"],
            )
        trainer = Trainer(config, model, tokenizer, Path(tmp) / "run")
        timer = ForwardTimer(model)
        rollout = trainer.rollout
        generation_time: list[float] = []

        def timed_rollout(step: int):
            before = timer.total
            batch = rollout(step)
            generation_time.append(timer.total - before)
            return batch

        trainer.rollout = timed_rollout
        rows = [(trainer.train_step(step), 0.0) for step in range(1, args.steps + 1)]
        rows = [(m, g) for (m, _), g in zip(rows, generation_time, strict=True)]

    def median(key):
        return statistics.median(m.get(key, 0.0) for m, _ in rows)

    step = median("time/step")
    model_time = statistics.median(
        min(f, m.get("time/rollout", 0.0)) + m.get("time/update", 0.0) + m.get("time/replay", 0.0)
        for m, f in rows
    )
    tokens = median("rollout/generated_tokens")
    print(
        f"{args.preset} on {config['env']['name']}, {config['rollout']['tasks_per_step']} tasks x "
        f"{config['rollout']['group_size']} copies, {torch.get_num_threads()} threads; "
        f"median of {args.steps} steps"
    )
    print("| quantity | value |")
    print("|---|---|")
    print(f"| step time | {step:.2f} s |")
    for phase in ("rollout", "log_prob", "update", "replay"):
        print(f"| {phase} | {median(f'time/{phase}'):.2f} s |")
    print(f"| generated tokens / step | {tokens:.0f} |")
    print(f"| rollout tokens/s | {tokens / max(median('time/rollout'), 1e-9):.0f} |")
    print(f"| trainer overhead (not model compute) | {100 * max(0.0, step - model_time) / step:.1f}% |")


if __name__ == "__main__":
    main()
