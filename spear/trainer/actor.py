"""The actor: response log-probs, entropy, and the mini-batched policy update (spec 2.2 steps 7 and 10).

An :class:`UpdateBatch` holds exactly what a policy-gradient step needs (verl's
layout: left-padded prompt region of ``prompt_length`` columns, right-padded
response region)::

    input_ids, attention_mask, position_ids  [N, P + R]
    response_mask, old_log_prob, advantages  [N, R]

The on-policy batch and the SIL replay batch are both UpdateBatches; each gets its
own optimizer steps (spec 2.2: separate steps, on-policy first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from spear.algo.losses import aggregate, entropy_from_logits, policy_loss
from spear.trainer.parallel import DataParallel


@dataclass
class UpdateBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    prompt_length: int
    response_mask: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def slice(self, start: int, stop: int) -> UpdateBatch:
        """Rows ``start:stop``, trimmed to the columns those rows use (less padding, less compute)."""
        attn = self.attention_mask[start:stop]
        p = self.prompt_length
        first, last = p, p + 1
        if attn.numel():
            starts, ends = column_spans(attn, p)
            first, last = int(starts.min()), int(ends.max())
        r_end = last - p
        return UpdateBatch(
            input_ids=self.input_ids[start:stop, first:last],
            attention_mask=attn[:, first:last],
            position_ids=self.position_ids[start:stop, first:last],
            prompt_length=p - first,
            response_mask=self.response_mask[start:stop, :r_end],
            old_log_prob=self.old_log_prob[start:stop, :r_end],
            advantages=self.advantages[start:stop, :r_end],
        )

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> UpdateBatch:
        return replace(self, **{name: fn(getattr(self, name)) for name in _TENSORS})

    def lengths(self) -> torch.Tensor:
        """Columns each row uses ``[N]``: its prompt plus its response tokens."""
        return self.attention_mask.sum(dim=1)

    def select(self, rows: torch.Tensor) -> UpdateBatch:
        """The rows at ``rows`` (an index tensor), in that order."""
        return self._map(lambda t: t[rows])

    def to(self, device: torch.device | str) -> UpdateBatch:
        return self._map(lambda t: t.to(device))


_TENSORS = ("input_ids", "attention_mask", "position_ids", "response_mask", "old_log_prob", "advantages")


def column_spans(attention_mask: torch.Tensor, prompt_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's columns ``[start, end)`` of an ``[N, P + R]`` mask, as two ``[N]`` tensors:
    from its first used column, at most ``prompt_length``, to one past its last, at least
    ``prompt_length + 1`` (a trimmed batch keeps the prompt's last column, which predicts the
    first response token, and one response column)."""
    used = attention_mask.bool()
    columns = torch.arange(used.shape[1], device=used.device)
    starts = torch.where(used, columns, used.shape[1]).amin(dim=1).clamp(max=prompt_length)
    ends = torch.where(used, columns + 1, 0).amax(dim=1).clamp(min=prompt_length + 1)
    return starts, ends


def collate(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    response_masks: Sequence[Sequence[int]],
    old_log_probs: Sequence[Sequence[float]],
    advantages: Sequence[float],
    *,
    pad_token_id: int,
) -> UpdateBatch:
    """Pad unpadded rows (e.g. from the replay buffer) into an UpdateBatch; advantages are per row."""
    n = len(prompts)
    p = max(len(x) for x in prompts)
    r = max(len(x) for x in responses)
    input_ids = torch.full((n, p + r), pad_token_id, dtype=torch.long)
    attention = torch.zeros((n, p + r), dtype=torch.long)
    mask = torch.zeros((n, r), dtype=torch.float32)
    old = torch.zeros((n, r), dtype=torch.float32)
    for i in range(n):
        lp, lr = len(prompts[i]), len(responses[i])
        input_ids[i, p - lp : p] = torch.as_tensor(prompts[i], dtype=torch.long)
        input_ids[i, p : p + lr] = torch.as_tensor(responses[i], dtype=torch.long)
        attention[i, p - lp : p + lr] = 1
        mask[i, :lr] = torch.as_tensor(response_masks[i], dtype=torch.float32)
        old[i, :lr] = torch.as_tensor(old_log_probs[i], dtype=torch.float32)
    adv = torch.as_tensor(np.asarray(advantages, dtype=np.float32)).unsqueeze(-1) * mask
    return UpdateBatch(input_ids, attention, (attention.cumsum(-1) - 1).clamp(min=0), p, mask, old, adv)


def response_log_probs(
    model: torch.nn.Module,
    batch: UpdateBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    forward_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi_T(response token) ``[n, R]`` (and token entropy ``[n, R]``) of the policy at
    ``temperature`` T, i.e. of ``softmax(logits / T)``.

    As in verl, the trained policy is the one the rollout sampled from: with rollout
    temperature T the ratio pi_theta / pi_old compares ``logits / T`` on both sides.
    Only the logits that predict response tokens are computed (``logits_to_keep``), and
    only once per distinct row (:func:`distinct_rows`): the results are copied to the
    duplicates, so autograd sums their gradients into the one forward pass.

    ``forward_tokens`` splits the forward pass into runs of consecutive rows, each trimmed
    to its own width and holding at most that many positions (rows x width; a longer row
    runs alone): rows of a length-sorted batch pad each other less than in one pass
    (:func:`forward_chunks`). The outputs are the same per row (up to float rounding:
    other matrix shapes); whatever loss is built on them is unchanged.
    """
    r = batch.response_mask.shape[1]
    first, inverse = distinct_rows(batch.input_ids, batch.attention_mask)
    log_probs, entropies = [], []
    for chunk in forward_chunks(batch.select(first), forward_tokens):
        out = model(
            input_ids=chunk.input_ids,
            attention_mask=chunk.attention_mask,
            position_ids=chunk.position_ids,
            use_cache=False,
            logits_to_keep=chunk.response_mask.shape[1] + 1,
        )
        logits = out.logits[:, :-1, :].float()
        if temperature != 1.0:
            logits = logits / temperature
        width = r - logits.shape[1]  # the chunk's response columns, padded back to the batch's R
        targets = chunk.input_ids[:, chunk.prompt_length :]
        chosen = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        log_probs.append(torch.nn.functional.pad(chosen, (0, width)))
        if with_entropy:
            entropies.append(torch.nn.functional.pad(entropy_from_logits(logits), (0, width)))
    entropy = torch.cat(entropies)[inverse] if with_entropy else None
    return torch.cat(log_probs)[inverse], entropy


def forward_chunks(batch: UpdateBatch, forward_tokens: int | None) -> list[UpdateBatch]:
    """``batch`` cut into runs of consecutive rows of at most ``forward_tokens`` positions
    each (rows x trimmed width), each trimmed by :meth:`UpdateBatch.slice`; ``None``: one run.

    Greedy in row order: a run grows while its trimmed width times its rows stays within
    the budget, so in a length-sorted batch the long rows run a few at a time and the short
    ones many at a time, instead of every row padded to the longest.
    """
    n = len(batch)
    if forward_tokens is None or n <= 1:
        return [batch.slice(0, n)]
    starts, ends = (t.tolist() for t in column_spans(batch.attention_mask, batch.prompt_length))
    chunks = []
    begin, lo, hi = 0, starts[0], ends[0]
    for row in range(1, n):
        new_lo, new_hi = min(lo, starts[row]), max(hi, ends[row])
        if (row - begin + 1) * (new_hi - new_lo) > forward_tokens:
            chunks.append(batch.slice(begin, row))
            begin, new_lo, new_hi = row, starts[row], ends[row]
        lo, hi = new_lo, new_hi
    chunks.append(batch.slice(begin, n))
    return chunks


def distinct_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)``: the first row of each distinct (tokens, mask) row of ``[N, L]``
    inputs, in order of appearance, and for every row the index of its distinct row in
    ``first``, so ``x[first][inverse]`` rebuilds a per-row ``x``.

    The G copies of a task start from the same prompt, and a low-entropy policy often
    plays the same turn in several copies token for token (about a fifth of the rows of a
    household step of the shipped policy at T = 0.7, benchmarks/bench_update.py): their
    forward and backward passes are paid once.
    """
    rows = torch.cat([input_ids, attention_mask.to(input_ids.dtype)], dim=1)
    _, labels = torch.unique(rows, dim=0, return_inverse=True)
    n = labels.shape[0]
    order = torch.arange(n, device=labels.device)
    first_of_label = torch.full((n,), n, device=labels.device).scatter_reduce(0, labels, order, "amin")
    first = first_of_label[labels].unique()  # sorted: order of first appearance
    rank = torch.empty(n, dtype=torch.long, device=labels.device)
    rank[first] = torch.arange(first.shape[0], device=labels.device)
    return first, rank[first_of_label[labels]]


@torch.no_grad()
def compute_log_probs(
    model: torch.nn.Module,
    batch: UpdateBatch,
    micro_batch_size: int,
    *,
    temperature: float = 1.0,
    forward_tokens: int | None = None,
) -> torch.Tensor:
    """Step 7: behaviour log-probs of the current policy at ``temperature`` for every response
    token ``[N, R]`` (``forward_tokens``: :func:`response_log_probs`)."""
    out = torch.zeros_like(batch.old_log_prob)
    device = next(model.parameters()).device
    for start in range(0, len(batch), micro_batch_size):
        part = batch.slice(start, start + micro_batch_size).to(device)
        log_probs, _ = response_log_probs(model, part, temperature=temperature, forward_tokens=forward_tokens)
        out[start : start + len(part), : log_probs.shape[1]] = log_probs.to(out.dtype).cpu()
    return out * batch.response_mask


@dataclass(frozen=True)
class LossSettings:
    """Per-update loss knobs (on-policy and replay differ in Clip-Cov parameters, spec 3.5)."""

    mode: str
    agg_mode: str
    clip_low: float
    clip_high: float
    clip_c: float | None
    cov_ratio: float
    cov_lb: float
    cov_ub: float
    kl_coef: float
    entropy_coeff: float
    norm_length: float | None
    temperature: float = 1.0  # the policy trained is softmax(logits / temperature)
    cov_block_rows: int | None = None  # Clip-Cov / KL-Cov token choice per block of rows


def micro_batch_objective(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    *,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss: LossSettings,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """``L_pg - entropy_coeff * H`` of one micro-batch (spec 3.4-3.6), all inputs ``[n, R]``.

    Returns the objective (carries the gradient), the policy loss ``L_pg`` alone and the
    loss mode's metrics. Every engine (our actor, :mod:`spear.integrations.trl`) scales this
    by the micro-batch's share of its mini-batch and by the update's weight (1 on-policy,
    lambda_sil(t) on replay) and nothing else.
    """
    pg, metrics = policy_loss(
        loss.mode,
        log_prob=log_prob,
        old_log_prob=old_log_prob,
        advantages=advantages,
        mask=response_mask,
        agg_mode=loss.agg_mode,
        clip_low=loss.clip_low,
        clip_high=loss.clip_high,
        clip_c=loss.clip_c,
        cov_ratio=loss.cov_ratio,
        cov_lb=loss.cov_lb,
        cov_ub=loss.cov_ub,
        kl_coef=loss.kl_coef,
        cov_block_rows=loss.cov_block_rows,
        norm_length=loss.norm_length,
        generator=generator,
    )
    ent = aggregate(entropy, response_mask, loss.agg_mode, norm_length=loss.norm_length)
    return pg - loss.entropy_coeff * ent, pg, metrics


def length_sorted(batch: UpdateBatch, mini_batch_size: int) -> UpdateBatch:
    """``batch`` with the rows of each mini-batch window sorted by length, longest first.

    Mini-batches keep their rows (the optimizer steps see the same data); only the split
    into micro-batches changes, so rows of similar length share a micro-batch and
    ``UpdateBatch.slice`` trims less padding (left-padded prompts of the turn layout vary
    by ~25% in length). The order is deterministic, so every data-parallel process agrees.
    """
    lengths = batch.lengths()
    order = torch.cat(
        [
            start + torch.argsort(lengths[start : start + mini_batch_size], descending=True, stable=True)
            for start in range(0, len(batch), mini_batch_size)
        ]
    )
    return batch.select(order)


def policy_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: UpdateBatch,
    loss: LossSettings,
    *,
    weight: float = 1.0,
    weight_at: str = "loss",
    mini_batch_size: int,
    micro_batch_size: int,
    forward_tokens: int | None = None,
    epochs: int = 1,
    grad_clip: float = 1.0,
    generator: torch.Generator | None = None,
    parallel: DataParallel | None = None,
) -> dict[str, float]:
    """Optimizer steps over ``batch`` in mini-batches of ``mini_batch_size`` rows (spec 2.2 step 10);
    each mini-batch is cut into micro-batches of rows of similar length (:func:`length_sorted`),
    and each micro-batch's forward pass into runs of at most ``forward_tokens`` positions
    (:func:`response_log_probs`; the loss is still that of the whole micro-batch).

    Each mini-batch accumulates micro-batch gradients of
    ``weight * (L_pg - entropy_coeff * H)``, each scaled by its share of the mini-batch's
    rows, then clips the gradient norm and steps (``weight_at="loss"``, the official order).
    With ``weight_at="clipped_gradient"`` the gradient of the unweighted objective is clipped
    first and then multiplied by ``weight``, so a clip that binds cannot cancel the weight
    (lambda_sil of the replay update, docs/DESIGN.md). A mini-batch whose loss or gradient
    is not finite is skipped (and counted). Micro-batches without any valid token are skipped.

    Metrics: ``grad_norm`` is the norm of the accumulated gradient before clipping (of the
    weighted objective when ``weight_at="loss"``), ``grad_norm_applied`` the norm of the
    gradient the optimizer steps with (clipped, and weighted under ``clipped_gradient``).

    With ``parallel``, every process holds the same ``batch`` and works on its share of
    each mini-batch; gradients are summed over processes before the clip, which gives
    the single-process gradient of the same micro-batch split (spear.trainer.parallel).
    """
    if weight_at not in ("loss", "clipped_gradient"):
        raise ValueError(f"weight_at must be 'loss' or 'clipped_gradient', got {weight_at!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    batch = length_sorted(batch, mini_batch_size)
    loss_weight = weight if weight_at == "loss" else 1.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    skipped = steps = 0

    def record(name: str, value: float) -> None:
        sums[name] = sums.get(name, 0.0) + value
        counts[name] = counts.get(name, 0) + 1

    for _ in range(epochs):
        for start in range(0, len(batch), mini_batch_size):
            stop = min(start + mini_batch_size, len(batch))
            lo, hi = parallel.shard(start, stop, micro_batch_size) if parallel is not None else (start, stop)
            optimizer.zero_grad(set_to_none=True)
            finite, any_tokens = True, False
            for micro in range(lo, hi, micro_batch_size):
                part = batch.slice(micro, min(micro + micro_batch_size, hi))
                if not bool(part.response_mask.any()):
                    continue
                part = part.to(device)
                any_tokens = True
                log_prob, entropy = response_log_probs(
                    model,
                    part,
                    temperature=loss.temperature,
                    with_entropy=True,
                    forward_tokens=forward_tokens,
                )
                objective, pg, metrics = micro_batch_objective(
                    log_prob,
                    entropy,
                    old_log_prob=part.old_log_prob,
                    advantages=part.advantages,
                    response_mask=part.response_mask,
                    loss=loss,
                    generator=generator,
                )
                total = loss_weight * objective * (len(part) / (stop - start))
                if not torch.isfinite(total):
                    finite = False
                    break
                total.backward()
                record("pg_loss", float(pg.detach()))
                valid = part.response_mask.bool()
                record("entropy", float(entropy.detach()[valid].mean()))
                for name, value in metrics.items():
                    record(name, value)
            if parallel is not None:
                # every process takes the same branch below: flags and gradients are summed
                flags = parallel.all_reduce_sum(
                    torch.tensor([float(any_tokens), float(not finite)], device=device)
                )
                any_tokens, finite = bool(flags[0] > 0), bool(flags[1] == 0)
                if any_tokens:
                    parallel.sum_gradients(params)
            if not any_tokens:
                continue
            limit = grad_clip if grad_clip > 0 else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
            if not finite or not math.isfinite(grad_norm):
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                continue
            applied = min(grad_norm, limit)
            if weight_at == "clipped_gradient":
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(weight)
                applied *= weight
            record("grad_norm", grad_norm)
            record("grad_norm_applied", applied)
            optimizer.step()
            steps += 1
    optimizer.zero_grad(set_to_none=True)
    if parallel is not None:
        sums, counts = _merge(parallel.gather((sums, counts)))
    out = {name: sums[name] / counts[name] for name in sums}
    out["optimizer_steps"] = float(steps)
    out["nonfinite_skipped"] = float(skipped)
    return out


def _merge(parts: list[tuple[dict[str, float], dict[str, int]]]) -> tuple[dict[str, float], dict[str, int]]:
    """Metric sums and counts of all processes added up (means over all micro-batches)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for part_sums, part_counts in parts:
        for name, value in part_sums.items():
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + part_counts[name]
    return sums, counts
