"""The update phase of an RL step (the largest share of the main job), with and without the
length-ordered micro-batch split of ``spear.trainer.actor.length_sorted``.

    .venv/bin/python benchmarks/bench_update.py [--rounds 3] [--model DIR] [overrides ...]

Plays one step's rollout of the default config from the shipped starting policy (or
``--model``), builds its update batch exactly as the trainer does, then times
``policy_update`` on that same batch in alternating rounds: rows in rollout order (as before
the change) and rows ordered by length inside each mini-batch (now). Besides seconds it
reports the padded tokens the forward/backward passes process, a count that does not depend
on the machine's speed or load.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

import spear.trainer.actor as actor
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import starting_policy_dir
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer


def padded_tokens(batch: actor.UpdateBatch, mini: int, micro: int) -> int:
    """Positions the micro-batch forward passes compute (rows x trimmed width, summed)."""
    total = 0
    for start in range(0, len(batch), mini):
        stop = min(start + mini, len(batch))
        for m in range(start, stop, micro):
            part = batch.slice(m, min(m + micro, stop))
            total += part.input_ids.numel()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="default: the shipped household starting policy")
    parser.add_argument("--threads", type=int)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config("spear", ["eval.final_episodes=0", *args.overrides])
    model_dir = args.model or starting_policy_dir(config["env"]["name"])
    model, tokenizer = load_model_and_tokenizer(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, model, tokenizer, Path(tmp))
        step_batch, _ = trainer.prepare(1, {})
    batch = step_batch.update
    settings = trainer.method.loss_settings(replay=False)
    mini, micro = config["actor"]["mini_batch_size"], config["actor"]["micro_batch_size"]
    real = int(batch.attention_mask.sum())
    before = padded_tokens(batch, mini, micro)
    after = padded_tokens(actor.length_sorted(batch, mini), mini, micro)

    start_state = copy.deepcopy(model.state_dict())
    sort = actor.length_sorted
    times: dict[str, list[float]] = {"rollout order": [], "length-ordered": []}
    for _ in range(args.rounds):
        for name in times:
            model.load_state_dict(start_state)
            optimizer = torch.optim.AdamW(model.parameters(), lr=config["actor"]["lr"])
            actor.length_sorted = sort if name == "length-ordered" else (lambda b, _m: b)
            began = time.perf_counter()
            actor.policy_update(
                model, optimizer, batch, settings, mini_batch_size=mini, micro_batch_size=micro
            )
            times[name].append(time.perf_counter() - began)
    actor.length_sorted = sort

    print(
        f"{len(batch)} rows, {real} real tokens; mini-batch {mini}, micro-batch {micro}; "
        f"{torch.get_num_threads()} threads; median of {args.rounds} alternating rounds"
    )
    print("| micro-batch split | padded tokens | padding | update seconds |")
    print("|---|---|---|---|")
    for name, tokens in (("rollout order", before), ("length-ordered", after)):
        print(
            f"| {name} | {tokens:,} | {100 * (tokens - real) / tokens:.0f}% | "
            f"{statistics.median(times[name]):.2f} |"
        )
    ratio = statistics.median(times["rollout order"]) / statistics.median(times["length-ordered"])
    print(f"update time ratio (rollout order / length-ordered): {ratio:.2f}x")


if __name__ == "__main__":
    main()
