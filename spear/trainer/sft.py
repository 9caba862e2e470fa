"""Cold start: supervised fine-tuning on deliberately imperfect expert demonstrations (`spear sft`).

The paper cold-starts its math model by SFT before RL (spec 4.4). The embedded
default does the same on any built-in environment: the environment's scripted
expert plays, but with probability ``noise`` a turn takes a random admissible
action instead, and the model imitates every response, noise included. The result
is a policy that already knows the format and the tools but wins only part of the
time, so RL has room to climb.

Demonstrations are collected through the rollout engine with a scripted policy, so
their prompts are token-for-token the prompts the RL rollouts will build.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from spear.envs.actions import format_react
from spear.envs.pool import EnvPool
from spear.rollout.batch import RolloutBatch
from spear.rollout.engine import RolloutEngine
from spear.trainer.actor import UpdateBatch, response_log_probs


@dataclass
class NoisyExpert:
    """A scripted policy: the expert's response, or with probability ``noise`` a random admissible action."""

    noise: float
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        self.rng = random.Random(self.seed)

    def __call__(self, pool: EnvPool, slots: list[int]) -> list[str]:
        texts = []
        for slot in slots:
            env = pool.env(slot)
            admissible = env.admissible_actions
            if admissible and self.rng.random() < self.noise:
                action = self.rng.choice(admissible)
                texts.append(format_react(action, f"I will try {action}."))
            else:
                texts.append(env.solver())
        return texts


def collect_demonstrations(
    engine: RolloutEngine, pool: EnvPool, *, episodes: int, noise: float, seed: int, tasks_per_batch: int
) -> RolloutBatch:
    """Play ``episodes`` noisy-expert episodes on training tasks (one copy per task)."""
    policy = NoisyExpert(noise, seed)
    rng = random.Random(seed)
    batches = []
    for start in range(0, episodes, tasks_per_batch):
        count = min(tasks_per_batch, episodes - start)
        seeds = [rng.randrange(2**31 - 1) for _ in range(count)]
        batches.append(engine.collect(pool, seeds, step=-1 - start, policy=policy))
    return RolloutBatch.concat(batches)


def demonstration_batch(batch: RolloutBatch) -> UpdateBatch:
    """The SFT view of a demonstration batch: imitate every scripted token."""
    mask = batch.response_mask.float()
    return UpdateBatch(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        prompt_length=batch.prompt_length,
        response_mask=mask,
        old_log_prob=torch.zeros_like(mask),
        advantages=torch.zeros_like(mask),
    )


def supervised_finetune(
    model: torch.nn.Module,
    data: UpdateBatch,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    progress=None,
) -> list[float]:
    """Token-mean cross-entropy on the response tokens; returns the loss per optimizer step.

    AdamW with a cosine learning-rate decay and 5% warm-up (a common SFT recipe).
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01
    )
    steps_per_epoch = -(-len(data) // batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup) * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / total)).item())
        ),
    )
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        shuffled = _rows(data, order)
        for start in range(0, len(shuffled), batch_size):
            part = shuffled.slice(start, start + batch_size)
            if not bool(part.response_mask.any()):
                continue
            log_prob, _ = response_log_probs(model, part)
            loss = -(log_prob * part.response_mask).sum() / part.response_mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(len(losses), total, losses[-1])
    model.eval()
    return losses


def _rows(data: UpdateBatch, order: torch.Tensor) -> UpdateBatch:
    return UpdateBatch(
        input_ids=data.input_ids[order],
        attention_mask=data.attention_mask[order],
        position_ids=data.position_ids[order],
        prompt_length=data.prompt_length,
        response_mask=data.response_mask[order],
        old_log_prob=data.old_log_prob[order],
        advantages=data.advantages[order],
    )
