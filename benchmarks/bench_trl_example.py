"""The TRL example of docs/INTEGRATIONS.md, run as written: held-out success before and after.

    .venv/bin/python benchmarks/bench_trl_example.py [--steps 30] [--episodes 128] \\
        [--model trajectory|turn|DIR] [--threads N] [--out DIR] [--json OUT] [overrides ...]

What the example does, step by step: ``load_config("spear", ["rollout.layout=trajectory",
"steps=N", *overrides])``, the shipped household policy of the trajectory layout
(``--model turn``: the turn-layout one the example used to start from; or a folder),
``SpearGRPOTrainer(..., args=spear_grpo_config(config, OUT))``, ``train()``,
``save_model(OUT/final_model)``. Then ``spear eval``'s own function (``evaluate_model``) plays
the same held-out episodes with the start and with the final model, each with the settings
its folder's ``spear_run.yaml`` records (as ``spear eval --model DIR --episodes N``).

Per RL step it reports the wall time (between the ``on_step_end`` callbacks that close an RL
step, SIL replay and checkpoint included), the rollout's success and format-error rate, and
the rows in the loss (kept by the group filter and not zeroed by a response filter); at the
end, which of TRL's checkpoints hold the replay buffer.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from spear.experiments.starting_policy import machine_info, source_commit

STEP_METRICS = {  # TRL's log entry -> the name printed here
    "spear/rollout/success_rate": "success",
    "spear/rollout/format_error_rate": "format_errors",
    "spear/rollout/truncated_rate": "truncated",
    "spear/rollout/rows_in_loss": "rows_in_loss",
    "spear/actor/pg_loss": "pg_loss",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="RL steps (the example: 30)")
    parser.add_argument("--episodes", type=int, default=128, help="held-out episodes per evaluation")
    parser.add_argument(
        "--model", default="trajectory", help="trajectory | turn (the shipped household policies) | a folder"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, help="TRL's output_dir (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    return parser.parse_args(argv)


def start_folder(model: str) -> Path:
    from spear.models.shipped import starting_policy_dir

    if model in ("trajectory", "turn"):
        path = starting_policy_dir("household", layout=model)
        if path is None:
            raise SystemExit(f"no household policy of the {model} layout is shipped")
        return path
    return Path(model)


def held_out(model_dir: Path, episodes: int) -> dict[str, Any]:
    """``spear eval --model model_dir --episodes episodes``: its settings from spear_run.yaml."""
    from spear.trainer.run import evaluate_model

    start = time.perf_counter()
    result = evaluate_model(str(model_dir), None, episodes)
    return {
        "episodes": result.episodes,
        "success": result.success_rate,
        "success_ci": list(result.success_ci),
        "turns": result.turns,
        "seconds": time.perf_counter() - start,
    }


def train(args: argparse.Namespace, start: Path, out: Path) -> tuple[list[dict[str, float]], Any]:
    """The example's training part; returns per-RL-step metrics and the trainer."""
    from transformers import TrainerCallback

    from spear.integrations.trl import SpearGRPOTrainer, spear_grpo_config
    from spear.models.embedded import load_model_and_tokenizer
    from spear.trainer.config import load_config

    config = load_config(
        "spear", ["env.name=household", "rollout.layout=trajectory", f"steps={args.steps}", *args.overrides]
    )
    model, tokenizer = load_model_and_tokenizer(start)
    seconds: list[float] = []

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.perf_counter()

        def on_step_end(self, a, state, control, **kwargs):
            if state.global_step % trainer.optimizer_steps_per_rl_step == 0:
                now = time.perf_counter()
                seconds.append(now - self.last)
                self.last = now
            return control

    with warnings.catch_warnings(record=True) as caught:  # the layout warning, when the start differs
        warnings.simplefilter("always")
        trainer = SpearGRPOTrainer(
            model, tokenizer, config, args=spear_grpo_config(config, out), callbacks=[Clock()]
        )
    for warning in caught:
        print(f"warning: {warning.message}")
    trainer.train()
    trainer.save_model(str(out / "final_model"))
    # TRL logs the rollout's metrics once, with the first optimizer step of each RL step
    logged = [h for h in trainer.state.log_history if "spear/rollout/success_rate" in h]
    steps = []
    for index, entry in enumerate(logged):
        steps.append(
            {"step": index + 1, "seconds": seconds[index]}
            | {name: entry[key] for key, name in STEP_METRICS.items() if key in entry}
        )
    return steps, trainer


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    start = start_folder(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "trl"
        before = held_out(start, args.episodes)
        print(f"before: {100 * before['success']:.1f}% held-out success ({before['episodes']} episodes)")
        steps, _ = train(args, start, out)
        for s in steps:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}))
        after = held_out(out / "final_model", args.episodes)
        checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        buffers = {p.name: (p / "spear_replay_buffer.pt").is_file() for p in checkpoints}
    measured = steps[1:] or steps  # the first step also pays for TRL's and torch's warm-up
    s_per_step = sum(s["seconds"] for s in measured) / len(measured)
    summary = {
        "model": str(start),
        "steps": args.steps,
        "overrides": args.overrides,
        "before": before,
        "after": after,
        "s_per_step": s_per_step,
        "first_step_s": steps[0]["seconds"],
        "max_format_errors": max(s.get("format_errors", 0.0) for s in steps),
        "min_rows_in_loss": min(s.get("rows_in_loss", 0.0) for s in steps),
        "checkpoints_with_buffer": buffers,
        "cpu": machine_info()["cpu"] if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(),
        "commit": source_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(
        f"held-out success {100 * before['success']:.1f}% -> {100 * after['success']:.1f}% "
        f"({after['episodes']} episodes, {args.steps} RL steps), {s_per_step:.1f} s/step after the first, "
        f"format errors <= {100 * summary['max_format_errors']:.1f}%, rows in the loss >= "
        f"{summary['min_rows_in_loss']:.0f}; {summary['cpu']}, {summary['torch_threads']} thread(s), "
        f"{summary['date']}, commit {summary['commit']}"
    )
    print(f"checkpoints holding spear_replay_buffer.pt: {buffers}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "steps": steps}, indent=1))


if __name__ == "__main__":
    main()
