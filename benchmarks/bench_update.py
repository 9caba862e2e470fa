"""The update phase of an RL step (the largest share of the main job): what the length-ordered
micro-batch split (``spear.trainer.actor.length_sorted``), computing each distinct row once
(``spear.trainer.actor.distinct_rows``) and forward passes of at most ``actor.forward_tokens``
positions (``spear.trainer.actor.forward_chunks``) save.

    .venv/bin/python benchmarks/bench_update.py [--rounds 3] [--model DIR] [overrides ...]

Plays one step's rollout of the default config (the main job's environment, or
``env.name=...``) from that environment's shipped default policy (``model.shipped``, or
``--model``), builds its update batch exactly as the trainer does, then times
``policy_update`` on that same batch in alternating rounds: rows in rollout order, every row
computed (the first version); rows ordered by length inside each mini-batch; on top, each
distinct row computed once; and on top, each micro-batch's forward pass cut into runs of at
most ``actor.forward_tokens`` positions (now; the config's value, e.g.
``actor.forward_tokens=2048``). Besides seconds it reports the padded tokens the
forward/backward passes process, a count that does not depend on the machine's speed or load.

``--compiled`` adds a fourth way: the default one with the model's forward under
``torch.compile`` (dynamic shapes, so one compile serves every width). Its first update,
which compiles, is timed on its own (a separate line), then it joins the alternating
rounds. Seconds are processor time (``time.process_time``), which a busy machine inflates
less than wall time.
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
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer
from spear.trainer.run import shipped_dir


def padded_tokens(
    batch: actor.UpdateBatch, mini: int, micro: int, *, distinct: bool, forward_tokens: int | None
) -> int:
    """Positions the forward passes compute (rows x trimmed width, summed)."""
    total = 0
    for start in range(0, len(batch), mini):
        stop = min(start + mini, len(batch))
        for m in range(start, stop, micro):
            part = batch.slice(m, min(m + micro, stop))
            if distinct:
                part = part.select(actor.distinct_rows(part.input_ids, part.attention_mask)[0])
            for chunk in actor.forward_chunks(part, forward_tokens):
                total += len(chunk) * chunk.input_ids.shape[1]
    return total


def every_row(input_ids: torch.Tensor, _mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(input_ids.shape[0])
    return rows, rows


VARIANTS = {  # name: (length-ordered, distinct rows once, forward passes of <= forward_tokens)
    "rollout order, every row": (False, False, False),
    "length-ordered, every row": (True, False, False),
    "length-ordered, distinct rows once": (True, True, False),
    "the same, forward passes of <= forward_tokens": (True, True, True),
}
COMPILED = "the same, forward under torch.compile"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="default: the environment's shipped default policy (model.shipped)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--compiled", action="store_true", help="also time the update under torch.compile")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config("spear", ["eval.final_episodes=0", *args.overrides])
    env = config["env"]["name"]
    model_dir = args.model or shipped_dir(config)
    if model_dir is None:
        raise SystemExit(f"no shipped {config['model']['shipped']} policy for {env}; pass --model")
    model, tokenizer = load_model_and_tokenizer(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, model, tokenizer, Path(tmp))
        step_batch, _ = trainer.prepare(1, {})
    batch = step_batch.update
    settings = trainer.method.loss_settings(replay=False)
    mini, micro = config["actor"]["mini_batch_size"], config["actor"]["micro_batch_size"]
    budget = config["actor"]["forward_tokens"]
    real = int(batch.attention_mask.sum())
    ordered_batch = actor.length_sorted(batch, mini)
    tokens = {
        name: padded_tokens(
            ordered_batch if ordered else batch,
            mini,
            micro,
            distinct=distinct,
            forward_tokens=budget if chunked else None,
        )
        for name, (ordered, distinct, chunked) in VARIANTS.items()
    }

    start_state = copy.deepcopy(model.state_dict())
    sort, distinct_rows = actor.length_sorted, actor.distinct_rows
    variants = dict(VARIANTS)
    models = {name: model for name in VARIANTS}
    if args.compiled:
        compiled_model = copy.deepcopy(model)
        compiled_model.forward = torch.compile(compiled_model.forward, dynamic=True)
        variants[COMPILED] = variants[list(VARIANTS)[-1]]
        models[COMPILED] = compiled_model
        tokens[COMPILED] = tokens[list(VARIANTS)[-1]]

    def timed_update(name: str) -> float:
        ordered, distinct, chunked = variants[name]
        models[name].load_state_dict(start_state)
        optimizer = torch.optim.AdamW(models[name].parameters(), lr=config["actor"]["lr"])
        actor.length_sorted = sort if ordered else (lambda b, _m: b)
        actor.distinct_rows = distinct_rows if distinct else every_row
        began = time.process_time()
        actor.policy_update(
            models[name],
            optimizer,
            batch,
            settings,
            mini_batch_size=mini,
            micro_batch_size=micro,
            forward_tokens=budget if chunked else None,
        )
        return time.process_time() - began

    if args.compiled:
        began = time.perf_counter()
        compiling = timed_update(COMPILED)
        wall = time.perf_counter() - began
        print(f"first compiled update (compiles): {compiling:.1f} s processor, {wall:.1f} s wall")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            times[name].append(timed_update(name))
    actor.length_sorted, actor.distinct_rows = sort, distinct_rows

    print(
        f"{len(batch)} rows, {real} real tokens; mini-batch {mini}, micro-batch {micro}, "
        f"forward_tokens {budget}; "
        f"{torch.get_num_threads()} threads; median of {args.rounds} alternating rounds"
    )
    print("| micro-batches | tokens computed | vs real tokens | update seconds (processor) |")
    print("|---|---|---|---|")
    for name in variants:
        print(
            f"| {name} | {tokens[name]:,} | {tokens[name] / real:.2f}x | "
            f"{statistics.median(times[name]):.2f} |"
        )
    first, *_, before, now = VARIANTS
    for old in (first, before):
        ratio = statistics.median(times[old]) / statistics.median(times[now])
        print(f"update time ratio ({old} / {now}): {ratio:.2f}x")
    if args.compiled:
        ratio = statistics.median(times[now]) / statistics.median(times[COMPILED])
        print(f"update time ratio ({now} / {COMPILED}): {ratio:.2f}x")


if __name__ == "__main__":
    main()
