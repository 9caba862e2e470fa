"""Rollout throughput of the embedded model on CPU.

Measures, for the default embedded model (Qwen2, hidden 128, 4 layers):

* ``generate``: the bare batched decode loop (16 rows x 128 new tokens, no stops);
* ``household/turn``: 4 tasks x 8 copies on household, turn layout (verl-agent);
* ``math/trajectory``: 4 tasks x 4 copies on math with the code interpreter,
  trajectory layout (one growing sequence per episode).

Tokens/s counts *generated* tokens (response_mask == 1) over the wall time of the
whole collect, environment steps and prompt building included.

    .venv/bin/python benchmarks/bench_rollout.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import torch

import spear.envs
from spear.models.embedded import build_model, count_parameters
from spear.models.tokenizer import build_tokenizer
from spear.rollout import RolloutConfig, RolloutEngine, generate


def solver_corpus(env_names: list[str], episodes: int = 12) -> list[str]:
    """Observations and expert responses: a realistic corpus for the tokenizer."""
    texts = []
    for name in env_names:
        env = spear.envs.make(name)
        for seed in range(episodes):
            texts.append(env.reset(seed)[0])
            for _ in range(6):
                action = env.solver()
                result = env.step(action)
                texts += [action, result.observation]
                if result.done:
                    break
        env.close()
    return texts


def bench_generate(model, tokenizer, repeats: int) -> tuple[float, float]:
    prompt = tokenizer.encode("<|im_start|>user\nYou are in a kitchen.<|im_end|>\n<|im_start|>assistant\n")
    best = float("inf")
    for r in range(repeats):
        gen = torch.Generator().manual_seed(r)
        start = time.perf_counter()
        outs = generate(
            model, [prompt] * 16, max_new_tokens=128, pad_token_id=tokenizer.pad_token_id, generator=gen
        )
        best = min(best, time.perf_counter() - start)
    tokens = sum(len(o.token_ids) for o in outs)
    return tokens, best


def bench_collect(model, tokenizer, env: str, layout: str, group: int, repeats: int) -> dict[str, float]:
    config = RolloutConfig(group_size=group, max_turns=4, max_new_tokens=96, layout=layout, seed=1)
    engine = RolloutEngine(model, tokenizer, config)
    try:
        engine.collect(env, [0, 1, 2, 3], step=0)  # warm-up: builds the pool
        best, batch = float("inf"), None
        for r in range(repeats):
            start = time.perf_counter()
            batch = engine.collect(env, [0, 1, 2, 3], step=r + 1)
            best = min(best, time.perf_counter() - start)
    finally:
        engine.close()
    stats = batch.stats()
    return {
        "episodes": stats["episodes"],
        "turns": sum(t.turns for t in batch.trajectories),
        "rows": stats["rows"],
        "tokens": stats["generated_tokens"],
        "seconds": best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is reported")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = build_tokenizer(solver_corpus(["household", "math"]), vocab_size=2048)
    model = build_model(tokenizer)
    print(
        f"embedded model: {count_parameters(model):,} parameters, vocab {len(tokenizer)}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'case':<20}{'episodes':>9}{'turns':>7}{'rows':>6}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}")
    tokens, seconds = bench_generate(model, tokenizer, args.repeats)
    rate = tokens / seconds
    print(f"{'generate 16x128':<20}{'-':>9}{'-':>7}{16:>6}{tokens:>8.0f}{seconds:>9.2f}{rate:>10.0f}")
    for env, layout, group in (("household", "turn", 8), ("math", "trajectory", 4)):
        r = bench_collect(model, tokenizer, env, layout, group, args.repeats)
        name = f"{env}/{layout}"
        print(
            f"{name:<20}{r['episodes']:>9.0f}{r['turns']:>7.0f}{r['rows']:>6.0f}{r['tokens']:>8.0f}"
            f"{r['seconds']:>9.2f}{r['tokens'] / r['seconds']:>10.0f}"
        )


if __name__ == "__main__":
    main()
