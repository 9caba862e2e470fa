"""spear's Dr.BoT trainer against TRL's ``GRPOTrainer`` (Dr. GRPO loss) on the same job, on CPU.

    pip install -e '.[trl]'       # TRL, pinned (also in the dev extra)
    .venv/bin/python benchmarks/bench_trl_peer.py [--steps 5] [--warmup 1] [--batch 4] \\
        [--group-size 4] [--max-new-tokens 64] [--seed 0] [--threads N] [--rounds R] \\
        [--sides trl,ours,preset] [--json OUT]

The job: single-turn math (the ``math`` environment with ``max_turns=1``: one answer per
question, boxed, no code-interpreter turn), B questions x G samples per step, one
optimizer step per step, the same untrained embedded Qwen2 checkpoint for both (built once
and saved to a temporary folder; this measures speed only, so no cold start is needed).

* **TRL**: ``GRPOTrainer`` with ``loss_type="dr_grpo"``, ``scale_rewards="none"``,
  ``beta=0``, ``epsilon``/``epsilon_high`` = drbot's clip_low/clip_high, B x G rows per
  optimizer step, ``max_completion_length`` = max new tokens, temperature 1, CPU,
  transformers ``generate`` (no vLLM), fp32, no gradient checkpointing (spear has none),
  constant learning rate. The prompts are the questions our environment draws for the
  same step seeds, rendered with the tokenizer's chat template exactly as our rollout
  engine renders them (the script checks that both tokenise them identically); the
  reward function plays each completion through our environment (+1 correct, -1 otherwise).
* **spear**: ``Trainer.train_step`` of the ``drbot`` preset. Its response filters mask
  truncated and unboxed answers and its group filter drops a quarter of the groups; on an
  untrained model that masks almost every row and skips most updates, which is not the
  work TRL does. The headline row therefore runs drbot with ``algorithm.filters=[]`` and
  ``algorithm.group_filter.ratio=1.0``: exactly Dr. GRPO, the loss TRL computes. The
  preset as shipped is reported as a second row.

Each side runs in its own fresh Python process, one after the other (``--rounds`` repeats
that, reversing the order every round, and pools the measured steps). Seconds per step is
the wall time of a whole step (rollout, rewards, update; for TRL everything between two
``on_step_end`` callbacks), the first ``--warmup`` steps excluded; generated tokens/s is the
number of sampled tokens (EOS included) divided by that time. Both sides sample until EOS or
the budget (spear's engine is told not to end a turn at ``</tool_call>``, which it does for
multi-turn tool use); the samples still differ, so tokens/s is the fair measure and the table
shows the mean completion length each side actually generated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ENV_NAME = "math"
ENV_OPTIONS = {"max_turns": 1}
INSTALL_HINT = "TRL is not installed; install the extra: pip install -e '.[trl]'"
SIDES = {
    "trl": "TRL GRPOTrainer (dr_grpo)",
    "ours": "spear drbot, filters off (= Dr. GRPO)",
    "preset": "spear drbot preset as shipped",
}
SAME_WORK = ["algorithm.filters=[]", "algorithm.group_filter.ratio=1.0"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5, help="measured steps per side (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="steps run first and not measured (default 1)")
    parser.add_argument("--batch", type=int, default=4, help="B: questions per step (default 4)")
    parser.add_argument("--group-size", type=int, default=4, help="G: samples per question (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="completion budget (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every side this many times, reversing the order each round (default 1)",
    )
    parser.add_argument(
        "--sides",
        default="trl,ours,preset",
        help=f"comma-separated subset of {','.join(SIDES)} (default: all three)",
    )
    parser.add_argument("--json", type=Path, help="write every per-step number to this file")
    # internal: one side in a child process
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "max_new_tokens", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.group_size < 2:
        parser.error("--group-size must be >= 2 (TRL's GRPO needs two samples per prompt)")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    unknown = set(args.sides.split(",")) - set(SIDES)
    if unknown:
        parser.error(f"--sides: unknown {sorted(unknown)}; choose from {list(SIDES)}")
    return args


# ----------------------------------------------------------------------------- shared setup
def spear_config(args: argparse.Namespace, model_dir: Path | None, extra: list[str]) -> dict[str, Any]:
    from spear.trainer.config import load_config

    return load_config(
        "drbot",
        [
            f"seed={args.seed}",
            f"steps={args.warmup + args.steps}",
            f"env.name={ENV_NAME}",
            f"env.options={json.dumps(ENV_OPTIONS)}",
            f"rollout.tasks_per_step={args.batch}",
            f"rollout.group_size={args.group_size}",
            f"rollout.max_new_tokens={args.max_new_tokens}",
            "rollout.max_turns=1",
            "rollout.temperature=1.0",
            "rollout.top_p=1.0",
            f"actor.mini_batch_size={max(256, args.batch * args.group_size)}",  # one optimizer step per step
            f"model.path={model_dir if model_dir is not None else 'null'}",
            "sft.enabled=false",
            "eval.final_episodes=0",
            "eval.every=0",
            "checkpoint.every=0",
            "logging.tensorboard=false",
            "logging.plots=false",
            *extra,
        ],
    )


def build_checkpoint(args: argparse.Namespace, out: Path) -> None:
    """The embedded default for the math environment, saved once in HF format for both sides."""
    from spear.trainer.embedded import build_embedded

    config = spear_config(args, None, [])
    build_embedded(
        out,
        ENV_NAME,
        config["env"]["options"],
        config["model"]["embedded"],
        seed=args.seed,
        history_length=config["rollout"]["history_length"],
    )


def step_task_seeds(args: argparse.Namespace) -> list[list[int]]:
    """The task seeds ``Trainer.rollout`` draws at steps 1..N (same derivation as spear's loop)."""
    from spear.trainer.loop import step_seed

    seeds = []
    for step in range(1, args.warmup + args.steps + 1):
        rng = np.random.default_rng(step_seed(args.seed, step, 1))
        seeds.append([int(s) for s in rng.integers(0, 2**31 - 1, size=args.batch)])
    return seeds


# ----------------------------------------------------------------------------- spear side
def run_spear(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    import torch

    from spear.models.embedded import load_model_and_tokenizer
    from spear.trainer.loop import Trainer

    config = spear_config(args, args.model_dir, extra)
    torch.manual_seed(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model_dir, dtype=torch.float32)  # as spear train on CPU
    steps: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, model, tokenizer, Path(tmp) / "run")
        # TRL samples until EOS or the budget; spear's engine would also end a turn at "</tool_call>"
        # (a multi-turn feature; with one turn it only ends the answer early). Same stopping rule here.
        trainer.engine.config = dataclasses.replace(trainer.engine.config, stop=())
        for step in range(1, config["steps"] + 1):
            start = time.perf_counter()
            metrics = trainer.train_step(step)
            seconds = time.perf_counter() - start
            steps.append(
                {
                    "seconds": seconds,
                    "tokens": metrics["rollout/generated_tokens"],
                    "rows": metrics["rollout/rows"],
                    "rollout_s": metrics.get("time/rollout", 0.0),
                    "update_s": metrics.get("time/update", 0.0),
                    "updated": float(metrics.get("actor/optimizer_steps", 0.0) > 0),
                    "reward": metrics["rollout/env_reward"],
                }
            )
        trainer.engine.close()
    return {"steps": steps}


# ----------------------------------------------------------------------------- TRL side
def trl_prompts(args: argparse.Namespace, tokenizer: Any) -> tuple[list[str], list[int]]:
    """Every step's B prompts in step order, rendered as spear's rollout engine renders them."""
    from spear.envs import make
    from spear.rollout.prompts import encode, render, tool_call_messages

    env = make(ENV_NAME, **ENV_OPTIONS, split="train")
    prompts, seeds = [], []
    for seed in (s for step in step_task_seeds(args) for s in step):
        observation, _ = env.reset(seed)
        text = render(tokenizer, tool_call_messages(observation), env.tools)
        if tokenizer(text)["input_ids"] != encode(tokenizer, text):
            raise RuntimeError("TRL would tokenise the prompt differently from spear (special tokens added)")
        prompts.append(text)
        seeds.append(seed)
    env.close()
    return prompts, seeds


class _TrlProbe:
    """Per-step wall clock (``on_step_end`` timestamps), rollout time and sampled tokens.

    TRL's rollout is ``_generate`` (tokenise, ``generate``, decode) plus ``_calculate_rewards``
    (our environment scoring each completion): the work spear's ``time/rollout`` covers.
    Both run once per step here (one generation per optimizer step).
    """

    ROLLOUT_METHODS = ("_generate", "_calculate_rewards")

    def __init__(self) -> None:
        self.start = 0.0
        self.ends: list[float] = []
        self.rollout_s: list[float] = []
        self.tokens: list[list[int]] = []
        self.rewards: list[float] = []

    def wrap(self, trainer: Any) -> None:
        for name in self.ROLLOUT_METHODS:
            setattr(trainer, name, self._timed(getattr(trainer, name), first=name == self.ROLLOUT_METHODS[0]))

    def _timed(self, inner: Any, *, first: bool) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            out = inner(*a, **kw)
            if first:
                self.rollout_s.append(0.0)
            self.rollout_s[-1] += time.perf_counter() - start
            return out

        return timed


def run_trl(args: argparse.Namespace) -> dict[str, Any]:
    try:
        import trl
        from datasets import Dataset
        from transformers import AutoTokenizer, TrainerCallback
        from transformers.utils import logging as hf_logging
    except ImportError:
        sys.exit(INSTALL_HINT)
    import torch

    from spear.envs import make

    hf_logging.set_verbosity_error()
    drbot = spear_config(args, args.model_dir, [])
    actor = drbot["actor"]
    tokenizer = AutoTokenizer.from_pretrained(str(args.model_dir))
    prompts, seeds = trl_prompts(args, tokenizer)
    probe = _TrlProbe()
    env = make(ENV_NAME, **ENV_OPTIONS, split="train")
    eos_ids = {tokenizer.eos_token_id}

    def math_reward(
        prompts: list[str], completion_ids: list[list[int]], seed: list[int], **_: Any
    ) -> list[float]:
        """Our environment's score of each completion, given the text spear's engine would pass it."""
        probe.tokens.append([len(ids) for ids in completion_ids])
        rewards = []
        for ids, task_seed in zip(completion_ids, seed, strict=True):
            ids = ids[:-1] if ids and ids[-1] in eos_ids else ids
            env.reset(task_seed)
            rewards.append(env.step(tokenizer.decode(ids, skip_special_tokens=False)).reward)
        probe.rewards.append(float(np.mean(rewards)))
        return rewards

    class StepClock(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            probe.start = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            probe.ends.append(time.perf_counter())

    config = trl.GRPOConfig(
        output_dir=str(args.model_dir.parent / "trl_out"),
        seed=args.seed,
        max_steps=args.warmup + args.steps,
        loss_type="dr_grpo",
        scale_rewards="none",  # Dr. GRPO; drbot's normalize_by_std: false
        beta=0.0,
        epsilon=actor["clip_low"],
        epsilon_high=actor["clip_high"],
        entropy_coef=actor["entropy_coeff"],
        num_generations=args.group_size,
        per_device_train_batch_size=args.batch * args.group_size,
        gradient_accumulation_steps=1,
        num_iterations=actor["ppo_epochs"],
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        learning_rate=actor["lr"],
        weight_decay=actor["weight_decay"],
        max_grad_norm=actor["grad_clip"],
        lr_scheduler_type="constant",
        use_cpu=True,
        use_vllm=False,
        bf16=False,
        gradient_checkpointing=False,
        shuffle_dataset=False,  # step t gets the questions spear draws at step t
        remove_unused_columns=False,  # the reward function needs the seed column
        report_to="none",
        logging_steps=10**6,
        save_strategy="no",
        disable_tqdm=True,
        log_completions=False,
    )
    trainer = trl.GRPOTrainer(
        model=str(args.model_dir),
        reward_funcs=math_reward,
        args=config,
        train_dataset=Dataset.from_dict({"prompt": prompts, "seed": seeds}),
        processing_class=tokenizer,
        callbacks=[StepClock()],
    )
    probe.wrap(trainer)
    trainer.train()
    env.close()
    bounds = [probe.start, *probe.ends]
    steps = [
        {
            "seconds": bounds[i + 1] - bounds[i],
            "tokens": float(sum(probe.tokens[i])),
            "rows": float(len(probe.tokens[i])),
            "rollout_s": probe.rollout_s[i],
            "update_s": None,  # TRL does backward and optimizer step outside any one method
            "updated": 1.0,
            "reward": probe.rewards[i],
        }
        for i in range(len(probe.ends))
    ]
    return {"steps": steps, "trl_version": trl.__version__, "threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- driver
def run_side(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.side == "trl":
        result = run_trl(args)
    else:
        result = run_spear(args, SAME_WORK if args.side == "ours" else [])
    result["threads"] = torch.get_num_threads()
    args.result.write_text(json.dumps(result))


def child(args: argparse.Namespace, side: str, model_dir: Path, result: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        f"--side={side}",
        f"--model-dir={model_dir}",
        f"--result={result}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--batch={args.batch}",
        f"--group-size={args.group_size}",
        f"--max-new-tokens={args.max_new_tokens}",
        f"--seed={args.seed}",
    ]
    if args.threads:
        command.append(f"--threads={args.threads}")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {side} run failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(result.read_text())


def summarise(rounds: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Totals over the measured steps of every round, plus each round's own s/step and tokens/s."""
    measured = [step for result in rounds for step in result["steps"][warmup:]]
    seconds = sum(s["seconds"] for s in measured)
    tokens = sum(s["tokens"] for s in measured)
    per_round = [
        (sum(s["seconds"] for s in r["steps"][warmup:]), sum(s["tokens"] for s in r["steps"][warmup:]))
        for r in rounds
    ]
    return {
        "s_per_step": seconds / len(measured),
        "median_s_per_step": statistics.median(s["seconds"] for s in measured),
        "tokens_per_s": tokens / seconds,
        "mean_completion_length": tokens / sum(s["rows"] for s in measured),
        "rollout_s_per_step": statistics.mean(s["rollout_s"] for s in measured),
        "updated_steps": sum(s["updated"] for s in measured),
        "measured_steps": len(measured),
        "round_tokens_per_s": [t / sec for sec, t in per_round],
    }


def report(args: argparse.Namespace, summaries: dict[str, dict[str, float]]) -> str:
    lines = [
        f"single-turn math, B={args.batch} x G={args.group_size} rows/step, "
        f"max_new_tokens={args.max_new_tokens}, {args.rounds} round(s) of {args.steps} measured steps "
        f"after {args.warmup} warm-up, seed {args.seed}",
        "",
        "| trainer | s/step | generated tokens/s | mean completion length | rollout s/step "
        "| update + rest s/step | steps with an update |",
        "|---|---|---|---|---|---|---|",
    ]
    for side, s in summaries.items():
        rest = s["s_per_step"] - s["rollout_s_per_step"]
        updated = f"{s['updated_steps']:.0f}/{s['measured_steps']}"
        lines.append(
            f"| {SIDES[side]} | {s['s_per_step']:.2f} | {s['tokens_per_s']:.0f} | "
            f"{s['mean_completion_length']:.1f} | {s['rollout_s_per_step']:.2f} | {rest:.2f} | {updated} |"
        )
    trl = summaries.get("trl")
    for side in ("ours", "preset"):
        if trl is not None and side in summaries:
            s = summaries[side]
            speed = s["tokens_per_s"] / trl["tokens_per_s"]
            step = trl["s_per_step"] / s["s_per_step"]
            rounds = ", ".join(
                f"{o / t:.2f}x"
                for o, t in zip(s["round_tokens_per_s"], trl["round_tokens_per_s"], strict=True)
            )
            lines.append(
                f"\n{SIDES[side]}: tokens/s ours/TRL = {speed:.2f}x, s/step TRL/ours = {step:.2f}x "
                f"(tokens/s ratio per round: {rounds})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side is not None:
        run_side(args)
        return
    sides = [s for s in SIDES if s in args.sides.split(",")]
    if "trl" in sides:
        try:
            import trl  # noqa: F401
        except ImportError:
            sys.exit(INSTALL_HINT)
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        build_checkpoint(args, model_dir)
        for round_index in range(args.rounds):
            # alternate the order so a drift in background load does not always favour one side
            for side in sides if round_index % 2 == 0 else sides[::-1]:
                print(f"round {round_index + 1}: {SIDES[side]} ...", file=sys.stderr, flush=True)
                results[side].append(child(args, side, model_dir, Path(tmp) / f"{side}.json"))
    summaries = {side: summarise(rounds, args.warmup) for side, rounds in results.items()}
    print(report(args, summaries))
    if args.json is not None:
        payload = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "results": results,
            "summary": summaries,
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
