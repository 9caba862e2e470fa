"""Benchmark of spear.algo on CPU: losses, advantages, filters and the replay buffer.

    python benchmarks/bench_algo.py [--rows 1024] [--tokens 512] [--repeats 20]

Prints ms per call (median over repeats) for each policy-loss mode (forward +
backward, seq-mean-token-sum-norm), each advantage estimator, the response filters,
and buffer add + draw of 10k rows, plus the clip_cov / vanilla cost ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from spear.algo.advantages import discounted_returns, gigpo, grpo
from spear.algo.filters import is_repetitive, low_variance_group_filter
from spear.algo.losses import policy_loss
from spear.algo.replay import ReplayBuffer


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    n, t, reps = args.rows, args.tokens, args.repeats
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    log_prob = torch.randn(n, t) * 0.5 - 2.0
    old = log_prob + 0.05 * torch.randn(n, t)
    adv = torch.randn(n, 1).expand(n, t).contiguous()
    mask = (torch.rand(n, t) > 0.2).float()
    results: dict[str, float] = {}

    def loss_call(mode: str) -> Callable[[], object]:
        gen = torch.Generator().manual_seed(0)

        def run() -> None:
            lp = log_prob.clone().requires_grad_(True)
            loss, _ = policy_loss(
                mode,
                log_prob=lp,
                old_log_prob=old,
                advantages=adv,
                mask=mask,
                agg_mode="seq-mean-token-sum-norm",
                clip_high=0.28,
                cov_ratio=0.02,
                cov_lb=-5.0,
                cov_ub=5.0,
                generator=gen,
            )
            loss.backward()

        return run

    # round-robin over the modes, so background load hits them alike
    modes = ("vanilla", "clip_cov", "kl_cov")
    runs = {mode: loss_call(mode) for mode in modes}
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    for run in runs.values():
        run()
    for _ in range(reps):
        for mode, run in runs.items():
            start = time.perf_counter()
            run()
            samples[mode].append(time.perf_counter() - start)
    for mode in modes:
        results[f"policy_loss {mode} (fwd+bwd)"] = 1000 * statistics.median(samples[mode])

    groups = np.repeat(np.arange(n // 8), 8)
    rewards = rng.choice([0.0, 10.0], size=n) + rng.normal(0, 0.1, size=n)
    trajs = np.arange(n) // 2
    turns = np.arange(n) % 2
    anchors = [f"obs{rng.integers(0, 3)}" for _ in range(n)]
    results["advantage grpo"] = timed(lambda: grpo(rewards, groups, normalize_by_std=False), reps)
    results["advantage gigpo"] = timed(
        lambda: gigpo(
            rewards,
            groups,
            anchor_obs=anchors,
            step_returns=discounted_returns(rewards, trajs, turns),
        ),
        reps,
    )
    results["group filter"] = timed(lambda: low_variance_group_filter(rewards, groups, trajs), reps)
    ids = torch.randint(0, 32000, (n, t))
    results["repetition filter"] = timed(lambda: is_repetitive(ids), max(3, reps // 4))

    rows = 10_000
    fields = {"old_log_prob": torch.randn(rows, t), "responses": torch.randint(0, 32000, (rows, t))}
    buf_rewards = rng.choice([0.0, 10.0], size=rows)
    buf_groups = np.repeat(np.arange(rows // 8), 8)

    def add_and_draw() -> None:
        buf = ReplayBuffer(capacity=2048)
        buf.add(fields, rewards=buf_rewards, advantages=np.ones(rows), group_ids=buf_groups, step=1)
        buf.sample()

    results["buffer add + draw (10k rows)"] = timed(add_and_draw, reps)

    print(f"spear.algo on CPU ({torch.get_num_threads()} threads), {n} rows x {t} tokens, median of {reps}")
    print("| operation | ms per call |")
    print("|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.2f} |")
    ratio = results["policy_loss clip_cov (fwd+bwd)"] / results["policy_loss vanilla (fwd+bwd)"]
    print(f"\nclip_cov / vanilla cost: {ratio:.2f}x")


if __name__ == "__main__":
    main()
