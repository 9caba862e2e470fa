"""Multi-turn household: spear's own trainer against SPEAR inside TRL (``spear.integrations.trl``).

    .venv/bin/python benchmarks/bench_trl_household.py [--preset spear] [--steps 3] [--warmup 1] \\
        [--model shipped|scratch] [--threads N] [--rounds R] [--json OUT] [overrides ...]

Both sides run the same spear config (``--preset``, the household profile, the trajectory
layout that TRL trains on, and any ``key=value`` overrides), the same starting weights and
the same task seeds at each RL step; only the engine differs:

* **ours**: ``spear.trainer.loop.Trainer.train_step`` (rollout, signal, update, SIL replay);
* **trl**: ``SpearGRPOTrainer.train`` (TRL 1.16 ``GRPOTrainer``: its dataloader, generation-
  batch bookkeeping and reward call, accelerate's ``backward``, HF's optimizer loop), whose
  rollout is spear's engine and whose loss is spear's.

Seconds per RL step are wall times of whole steps after ``--warmup`` steps (TRL: between
the ``on_step_end`` callbacks that close an RL step, SIL replay included); generated
tokens/s = tokens the policy sampled / that time. Each side runs in a fresh process;
``--rounds`` repeats both, alternating the order. ``--model scratch`` builds an untrained
embedded model of the ``model.embedded.*`` size instead of loading the shipped policy (the
GPU check uses it for a 50-100M-parameter model). On a GPU both sides run bf16 autocast
with fp32 master weights.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

SIDES = {"ours": "spear Trainer", "trl": "TRL GRPOTrainer + spear"}
# TRL trains one sequence per episode: both sides use that layout; 8 turns keep the growing
# multi-turn context (every observation stays in the sequence) to a CPU-sized length
LAYOUT = [
    "rollout.layout=trajectory",
    "rollout.max_turns=8",
    "eval.final_episodes=0",
    "eval.every=0",
    "checkpoint.every=0",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="spear")
    parser.add_argument("--steps", type=int, default=3, help="measured RL steps per side (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="RL steps run first, not measured (default 1)")
    parser.add_argument("--model", choices=["shipped", "scratch"], default="shipped")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sides", default="ours,trl")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (both sides)")
    return parser.parse_args(argv)


def bench_config(args: argparse.Namespace) -> dict[str, Any]:
    from spear.trainer.config import load_config

    steps = args.warmup + args.steps
    return load_config(args.preset, ["env.name=household", *LAYOUT, f"steps={steps}", *args.overrides])


def build_model(args: argparse.Namespace, out: Path) -> Path:
    """The starting weights both sides load: the shipped policy, or an untrained embedded model."""
    from spear.models.shipped import starting_policy_dir

    if args.model == "shipped":
        return starting_policy_dir("household")
    from spear.trainer.embedded import build_embedded

    config = bench_config(args)
    model, _ = build_embedded(
        out,
        config["env"]["name"],
        config["env"]["options"],
        config["model"]["embedded"],
        seed=config["seed"],
        history_length=config["rollout"]["history_length"],
    )
    print(f"untrained embedded model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    return out


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(args: argparse.Namespace, config: dict[str, Any], tmp: Path) -> list[dict[str, float]]:
    from spear.models.embedded import load_model_and_tokenizer
    from spear.trainer.loop import Trainer
    from spear.trainer.run import make_accelerator

    model, tokenizer = load_model_and_tokenizer(args.model_dir)
    trainer = Trainer(config, model, tokenizer, tmp, accelerator=make_accelerator(config))
    steps = []
    for step in range(1, config["steps"] + 1):
        start = time.perf_counter()
        metrics = trainer.train_step(step)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        steps.append(
            {
                "seconds": time.perf_counter() - start,
                "tokens": metrics.get("rollout/generated_tokens", 0.0),
                "success": metrics.get("rollout/success_rate", 0.0),
                "sil_fired": metrics.get("sil/fired", 0.0),
            }
        )
    return steps


def run_trl(args: argparse.Namespace, config: dict[str, Any], tmp: Path) -> list[dict[str, float]]:
    from transformers import TrainerCallback

    from spear.integrations.trl import SpearGRPOTrainer, spear_grpo_config
    from spear.models.embedded import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model_dir)
    steps: list[dict[str, float]] = []
    pending: dict[str, float] = {}

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.perf_counter()

        def on_step_end(self, a, state, control, **kwargs):
            if state.global_step % trainer.optimizer_steps_per_rl_step == 0:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                now = time.perf_counter()
                steps.append({"seconds": now - self.last, **pending})
                self.last = now
            return control

    class Counting(SpearGRPOTrainer):
        def spear_rollout(self, prompts):
            out = super().spear_rollout(prompts)
            pending["tokens"] = float(sum(sum(m) for m in out["env_mask"]))
            pending["success"] = self._metrics["train"]["spear/rollout/success_rate"][-1]
            return out

        def replay_update(self):
            pending["sil_fired"] = float(self._pending_replay is not None)
            super().replay_update()

    trainer = Counting(
        model,
        tokenizer,
        config,
        args=spear_grpo_config(config, tmp, logging_steps=10**6),
        callbacks=[Clock()],
    )
    trainer.train()
    return steps


def child(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    config = bench_config(args)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_ours if args.side == "ours" else run_trl
        steps = run(args, config, Path(tmp))
    print(json.dumps({"steps": steps, "peak_memory_mb": peak_memory_mb()}))


def summarise(side: str, runs: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    measured = [s for run in runs for s in run["steps"][warmup:]]
    seconds = sum(s["seconds"] for s in measured)
    tokens = sum(s["tokens"] for s in measured)
    return {
        "side": side,
        "s_per_step": seconds / len(measured),
        "s_per_step_each": [round(s["seconds"], 3) for s in measured],
        "tokens_per_s": tokens / seconds,
        "tokens_per_step": tokens / len(measured),
        "rollout_success": statistics.mean(s["success"] for s in measured),
        "sil_fired_steps": sum(s.get("sil_fired", 0.0) for s in measured),
        "peak_memory_mb": max(run["peak_memory_mb"] for run in runs),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side:
        child(args)
        return
    sides = args.sides.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(args, Path(tmp) / "model")
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
        for round_ in range(args.rounds):
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                cmd = [sys.executable, __file__, "--side", side, "--model-dir", str(model_dir)]
                cmd += ["--preset", args.preset, "--steps", str(args.steps), "--warmup", str(args.warmup)]
                cmd += ["--model", args.model, *(["--threads", str(args.threads)] if args.threads else [])]
                out = subprocess.run([*cmd, *args.overrides], capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{side} failed:\n{out.stderr[-4000:]}")
                runs[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = [summarise(side, runs[side], args.warmup) for side in sides]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"preset {args.preset}, household, trajectory layout, model {args.model}, device {device}")
    header = ("s/step", "tokens/s", "tok/step", "success", "SIL", "MB")
    print(f"{'side':28s}" + "".join(f"{h:>10s}" for h in header))
    for r in rows:
        values = (r["s_per_step"], r["tokens_per_s"], r["tokens_per_step"], r["rollout_success"])
        values += (r["sil_fired_steps"], r["peak_memory_mb"])
        print(f"{SIDES[r['side']]:28s}" + "".join(f"{v:10.2f}" for v in values))
    if {"ours", "trl"} <= set(sides):
        ours, trl = rows[sides.index("ours")], rows[sides.index("trl")]
        print(
            f"ours / TRL: {trl['s_per_step'] / ours['s_per_step']:.2f}x (s/step), "
            f"{ours['tokens_per_s'] / trl['tokens_per_s']:.2f}x (generated tokens/s)"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
