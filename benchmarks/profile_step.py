"""Where one RL step's time goes, and how a step's cost grows with its work (issue 38).

    .venv/bin/python benchmarks/profile_step.py [--env math] [--steps 3] [--threads 2] [--model DIR]
        [overrides ...]
    .venv/bin/python benchmarks/profile_step.py --scaling [--out docs/img/step-scaling.png]

Starts from the environment's shipped default policy (math: the tool-shy novice of the main
job), or from ``--model`` (e.g. a run's checkpoint, to see its later steps), with preset
``spear``, and splits each step (after one warm-up step) into:

- **model forward in generation**: the model's forward passes while the rollout decodes
  (prefill and one token at a time), timed with hooks on the top module (synchronised on a
  GPU), i.e. the kernels and the module-call overhead around them;
- **decode loop, Python**: the rest of ``spear.rollout.generation.generate``: sampling, the
  KV-cache bookkeeping and the stop-string checks, per token;
- **environment**: ``EnvPool.reset`` and ``EnvPool.step`` (math: the sandboxed interpreter);
- **tokenization**: chat templates, encoding prompts and deltas, decoding responses;
- **rollout, other**: the engine's bookkeeping and the batch it builds;
- **log-prob, update, replay**: the trainer's phases (forward + backward + optimizer).

``--scaling`` times ``--steps`` steps after a warm-up (their medians) at several sizes of
work: tasks per step 8, 16, 32, 64 (group size 4), group size 2, 4, 8 (8 tasks), and turns
per episode (the environment's turn cap) 1, 2, 4, 8 on household, and writes a plot of
seconds against generated tokens with a line through the origin and the smallest case:
cost that grows faster than linearly rises above it. The update's work is the rows that
pass the group filter, which the JSON beside the plot also holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch

import spear.rollout.engine as engine_module
from spear.envs.pool import EnvPool
from spear.models.embedded import load_model_and_tokenizer
from spear.rollout.engine import RolloutEngine
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer
from spear.trainer.run import shipped_dir

PHASES = ("log_prob", "update", "replay")


class Clock:
    """Wall time accumulated per label by wrapped callables."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.sync = sync

    def wrap(self, label: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[label] += time.perf_counter() - start

        return timed

    def hook_forward(self, model: torch.nn.Module, label: str, active: Callable[[], bool]) -> None:
        started: list[float] = []

        def pre(*_):
            if active():
                self.sync()
                started.append(time.perf_counter())

        def post(*_):
            if started:
                self.sync()
                self.totals[label] += time.perf_counter() - started.pop()

        model.register_forward_pre_hook(pre)
        model.register_forward_hook(post)


def make_trainer(
    env: str, steps: int, overrides: list[str], run_dir: Path, model_dir: str | None = None
) -> Trainer:
    config = load_config(
        "spear",
        [
            f"env.name={env}",
            f"steps={steps}",
            "eval.final_episodes=0",
            "eval.every=0",
            "checkpoint.every=0",
            "logging.samples.every=0",
            "logging.plots=false",
            "logging.tensorboard=false",
            *overrides,
        ],
    )
    path = model_dir or shipped_dir(config)
    if path is None:
        raise SystemExit(f"no shipped {config['model']['shipped']} policy for {env}")
    model, tokenizer = load_model_and_tokenizer(path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Trainer(config, model.to(device), tokenizer, run_dir)


def instrument(trainer: Trainer) -> Clock:
    """Wrap the rollout's parts with a :class:`Clock` (module-level names the engine calls)."""
    cuda = next(trainer.model.parameters()).is_cuda
    clock = Clock(torch.cuda.synchronize if cuda else (lambda: None))
    in_generate = [False]
    original_generate = engine_module.generate

    def generate(*args, **kwargs):
        in_generate[0] = True
        try:
            return original_generate(*args, **kwargs)
        finally:
            in_generate[0] = False

    engine_module.generate = clock.wrap("generate", generate)
    for name in ("encode", "render", "template_delta"):
        setattr(engine_module, name, clock.wrap("tokenization", getattr(engine_module, name)))
    RolloutEngine._response_text = clock.wrap("tokenization", RolloutEngine._response_text)
    EnvPool.step = clock.wrap("environment", EnvPool.step)
    EnvPool.reset = clock.wrap("environment", EnvPool.reset)
    clock.hook_forward(trainer.model, "forward", lambda: in_generate[0])
    return clock


def profile(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args.env, args.steps + 1, args.overrides, Path(tmp), args.model)
        clock = instrument(trainer)
        trainer.train_step(1)  # warm-up: first-call allocations, tokenizer caches
        rows = []
        for step in range(2, args.steps + 2):
            clock.totals.clear()
            metrics = trainer.train_step(step)
            rows.append({**metrics, **{f"clock/{k}": v for k, v in clock.totals.items()}})

    def median(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows)

    forward, generate = median("clock/forward"), median("clock/generate")
    env, tokenization, rollout = (
        median("clock/environment"),
        median("clock/tokenization"),
        median("time/rollout"),
    )
    parts = [
        ("model forward in generation", forward),
        ("decode loop, Python (sampling, cache, stop checks)", generate - forward),
        ("environment (reset, step)", env),
        ("tokenization (templates, encode, decode)", tokenization),
        ("rollout, other (engine bookkeeping, batch)", rollout - generate - env - tokenization),
        *((phase, median(f"time/{phase}")) for phase in PHASES),
    ]
    step = median("time/step")
    tokens = median("rollout/generated_tokens")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"spear on {args.env} from its shipped default policy, {device}, {torch.get_num_threads()} "
        f"threads; median of {args.steps} steps after a warm-up; {tokens:.0f} generated tokens "
        f"and {median('rollout/rows'):.0f} rows a step"
    )
    print("\n| part of the step | seconds | share |")
    print("|---|---|---|")
    for name, seconds in parts:
        print(f"| {name} | {seconds:.3f} | {100 * seconds / step:.0f}% |")
    print(f"| **step** (incl. samples, logging) | **{step:.3f}** | 100% |")
    calls = median("rollout/generated_tokens")
    print(
        f"\nper generated token: {1000 * (generate - forward) / max(calls, 1):.3f} ms of decode-loop Python"
    )


# axis -> (the key varied, its values, the settings held fixed)
SCALING: dict[str, tuple[str, tuple[int, ...], list[str]]] = {
    "tasks per step": ("rollout.tasks_per_step", (8, 16, 32, 64), ["rollout.group_size=4"]),
    "group size": ("rollout.group_size", (2, 4, 8), ["rollout.tasks_per_step=8"]),
    "turns per episode": (
        "env.options.max_turns",
        (1, 2, 4, 8),
        ["rollout.tasks_per_step=8", "rollout.group_size=4"],
    ),
}
SCALED = (
    "rollout/generated_tokens",
    "rollout/rows",
    "rollout/rows_after_group_filter",
    "time/step",
    "time/rollout",
    "time/update",
)


def scaling(args: argparse.Namespace) -> None:
    results = []
    for axis, (key, values, fixed) in SCALING.items():
        env = "household" if axis == "turns per episode" else args.env
        for value in values:
            overrides = [*fixed, f"{key}={value}", *args.overrides]
            with tempfile.TemporaryDirectory() as tmp:
                trainer = make_trainer(env, 1 + args.steps, overrides, Path(tmp), args.model)
                trainer.train_step(1)  # warm-up
                steps = [trainer.train_step(step) for step in range(2, 2 + args.steps)]
            row = {
                "axis": axis,
                "env": env,
                "value": value,
                "overrides": overrides,
                "steps": len(steps),
                **{k: statistics.median(m.get(k, 0.0) for m in steps) for k in SCALED},
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCALING), figsize=(4.2 * len(SCALING), 3.6))
    for ax, axis in zip(axes, SCALING, strict=True):
        points = [r for r in results if r["axis"] == axis]
        xs = [r["rollout/generated_tokens"] for r in points]
        for key, label in (("time/step", "step"), ("time/rollout", "rollout"), ("time/update", "update")):
            ys = [r[key] for r in points]
            ax.plot(xs, ys, "o-", label=label)
            ax.plot([0, max(xs)], [0, ys[0] / xs[0] * max(xs)], ":", color="grey", linewidth=0.8)
        for r in points:
            ax.annotate(str(r["value"]), (r["rollout/generated_tokens"], r["time/step"]), fontsize=8)
        ax.set_title(f"{axis} ({points[0]['env']})", fontsize=10)
        ax.set_xlabel("generated tokens per step")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=8)
    fig.suptitle("step cost against its work (dotted: linear through the smallest case)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out} and {out.with_suffix('.json')}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="math")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", help="a model folder to start from (default: the shipped default policy)")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--out", default="docs/img/step-scaling.png")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    (scaling if args.scaling else profile)(args)


if __name__ == "__main__":
    main()
