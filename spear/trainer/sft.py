"""Cold start: supervised fine-tuning on deliberately imperfect expert demonstrations (`spear sft`).

The paper cold-starts its math model by SFT before RL (spec 4.4). The embedded
default does the same on any built-in environment: the environment's scripted
expert plays, but with probability ``noise`` a turn takes a random admissible
action instead, and the model imitates every response, noise included. The result
is a policy that already knows the format and the tools but wins only part of the
time, so RL has room to climb.

With probability ``stale_noise`` a turn instead repeats an action that was
admissible earlier in the episode and is not any more (going where the agent
already stands, taking what it already holds, clicking a product of a page it
left): the mistakes a small policy makes. The environment rejects it, the model
is *not* trained on that response, and it is trained on the expert's next turns,
so it learns to recover from the environment's invalid-action answer, a state
expert-only demonstrations never show (docs/TUNING.md).

With probability ``tool_shy`` a whole episode is played by a tool-shy agent instead
(``Env.tool_shy_response``: math answers in its head, without the interpreter): the model
learns when to reach for a tool from a mix in which it mostly does not, the tool-shy
novice of docs/DESIGN.md ("Novice starting policies").

Demonstrations are collected through the rollout engine with a scripted policy, so
their prompts are token-for-token the prompts the RL rollouts will build.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from spear.envs.actions import format_react, parse_react
from spear.envs.pool import EnvPool
from spear.rollout.batch import RolloutBatch
from spear.rollout.engine import RolloutEngine
from spear.trainer.actor import UpdateBatch, response_log_probs


@dataclass
class NoisyExpert:
    """A scripted policy: the expert's response; with probability ``noise`` a random admissible
    action; with probability ``stale_noise`` a stale action (admissible earlier in the episode,
    not now; the expert's response when there is none). With probability ``tool_shy`` an
    episode is the tool-shy agent's (drawn at its first turn) and every turn of it is
    ``Env.tool_shy_response``."""

    noise: float
    seed: int = 0
    keep_think: bool = True
    stale_noise: float = 0.0
    tool_shy: float = 0.0

    def __post_init__(self) -> None:
        for name in ("noise", "stale_noise", "tool_shy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.noise + self.stale_noise > 1.0:
            raise ValueError(f"noise + stale_noise must be <= 1, got {self.noise} + {self.stale_noise}")
        self.rng = random.Random(self.seed)
        self._seen: dict[int, dict[str, None]] = {}  # slot -> actions admissible so far this episode
        self._shy: dict[int, bool] = {}  # slot -> whether this episode is the tool-shy agent's

    def __call__(self, pool: EnvPool, slots: list[int]) -> list[str]:
        texts = []
        for slot in slots:
            env = pool.env(slot)
            if self._plays_shy(slot, env):
                texts.append(env.tool_shy_response())
                continue
            admissible = env.admissible_actions
            stale = self._stale_actions(slot, env.turn, admissible or [])
            draw = self.rng.random() if admissible else 1.0
            if draw < self.noise:
                action = self.rng.choice(admissible)
            elif stale and draw < self.noise + self.stale_noise:
                action = self.rng.choice(stale)
            else:
                texts.append(self._expert(env))
                continue
            texts.append(format_react(action, f"I will try {action}." if self.keep_think else ""))
        return texts

    def _plays_shy(self, slot: int, env) -> bool:
        # no draw at all without tool_shy, so the other recipes' demonstrations keep their bytes
        if self.tool_shy == 0.0:
            return False
        if env.turn == 0:
            if env.tool_shy_response() is None:
                raise ValueError(
                    f"sft.tool_shy > 0 needs an environment with a tool-shy answer; {env.name} has none"
                )
            self._shy[slot] = self.rng.random() < self.tool_shy
        return self._shy[slot]

    def _stale_actions(self, slot: int, turn: int, admissible: list[str]) -> list[str]:
        """Actions seen admissible earlier in this slot's episode that are not admissible now."""
        if turn == 0:
            self._seen[slot] = {}
        seen = self._seen.setdefault(slot, {})
        now = set(admissible)
        stale = [action for action in seen if action not in now]
        seen.update(dict.fromkeys(admissible))
        return stale

    def _expert(self, env) -> str:
        response = env.solver()
        if self.keep_think or env.action_format != "react":
            return response
        action = parse_react(response, None, require_think=False).action
        return format_react(action or "", "")


def collect_demonstrations(
    engine: RolloutEngine,
    pool: EnvPool | str,
    *,
    episodes: int,
    noise: float,
    seed: int,
    tasks_per_batch: int,
    keep_think: bool = True,
    stale_noise: float = 0.0,
    tool_shy: float = 0.0,
) -> RolloutBatch:
    """Play ``episodes`` noisy-expert episodes on training tasks (one copy per task).

    ``keep_think=False`` keeps the expert's action but leaves the ``<think>`` block empty:
    a small model then learns to act without having to imitate reasoning text.
    ``stale_noise > 0`` needs the ``turn`` layout (one row per turn), so that
    :func:`demonstration_batch` can leave out exactly the rejected turns.
    """
    if stale_noise > 0 and engine.config.layout != "turn":
        raise ValueError(
            "stale_noise > 0 needs rollout.layout=turn: a rejected action is left out of the SFT "
            "loss row by row"
        )
    policy = NoisyExpert(noise, seed, keep_think, stale_noise, tool_shy)
    rng = random.Random(seed)
    batches = []
    for start in range(0, episodes, tasks_per_batch):
        count = min(tasks_per_batch, episodes - start)
        seeds = [rng.randrange(2**31 - 1) for _ in range(count)]
        batches.append(engine.collect(pool, seeds, step=-1 - start, policy=policy))
    return RolloutBatch.concat(batches)


def demonstration_batch(batch: RolloutBatch) -> UpdateBatch:
    """The SFT view of a demonstration batch: imitate every scripted response the environment
    accepted (rows of rejected, stale actions get a zero response mask)."""
    accepted = torch.as_tensor(~batch.invalid_action, dtype=torch.float32)
    mask = batch.response_mask.float() * accepted[:, None]
    return UpdateBatch(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        prompt_length=batch.prompt_length,
        response_mask=mask,
        old_log_prob=torch.zeros_like(mask),
        advantages=torch.zeros_like(mask),
    )


def sft_optimizer(
    model: torch.nn.Module, lr: float, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay 0.01) with a 5% linear warm-up and a cosine decay over ``total_steps``."""
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01
    )
    warmup = max(1, total_steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup)
            * 0.5
            * (1 + torch.cos(torch.tensor(torch.pi * s / total_steps)).item())
        ),
    )
    return optimizer, scheduler


def sft_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss: torch.Tensor,
) -> float:
    """One optimizer step on ``loss`` (gradient norm clipped to 1); returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def supervised_finetune(
    model: torch.nn.Module,
    data: UpdateBatch,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    prompt_weight: float = 0.0,
    progress=None,
) -> list[float]:
    """Token-mean cross-entropy on the response tokens; returns the loss per optimizer step.

    ``prompt_weight > 0`` adds that weight times the language-modelling loss on the
    prompt tokens: a model trained from scratch (the embedded default) then also learns
    the environment's language and to copy from its prompt, at no extra forward cost.
    AdamW with a cosine learning-rate decay and 5% warm-up (a common SFT recipe).
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    steps_per_epoch = -(-len(data) // batch_size)
    total = epochs * steps_per_epoch
    optimizer, scheduler = sft_optimizer(model, lr, total)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        shuffled = data.select(order)
        for start in range(0, len(shuffled), batch_size):
            part = shuffled.slice(start, start + batch_size)
            if not bool(part.response_mask.any()):
                continue
            if prompt_weight > 0:
                loss = _sequence_loss(model, part, prompt_weight)
            else:
                log_prob, _ = response_log_probs(model, part)
                loss = -(log_prob * part.response_mask).sum() / part.response_mask.sum()
            losses.append(sft_step(model, optimizer, scheduler, loss))
            if progress is not None:
                progress(len(losses), total, losses[-1])
    model.eval()
    return losses


def _sequence_loss(model: torch.nn.Module, batch: UpdateBatch, prompt_weight: float) -> torch.Tensor:
    """Response cross-entropy + ``prompt_weight`` x prompt cross-entropy (token means)."""
    logits = (
        model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        )
        .logits[:, :-1]
        .float()
    )
    targets = batch.input_ids[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    p = batch.prompt_length
    real = batch.attention_mask[:, 1:].bool() & batch.attention_mask[:, :-1].bool()
    prompt = real.clone()
    prompt[:, p - 1 :] = False
    response = torch.zeros_like(real)
    response[:, p - 1 :] = batch.response_mask.bool()
    loss = nll[response].mean()
    if prompt.any():
        loss = loss + prompt_weight * nll[prompt].mean()
    return loss
