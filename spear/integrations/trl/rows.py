"""One spear rollout as TRL rows, and the learning signal that goes with them (spec 2.2 steps 4-8).

TRL's ``GRPOTrainer`` lays a multi-turn episode out as one sequence (prompt, then the
assistant and observation tokens; its ``env_mask`` is 0 on observations): spear's
``trajectory`` layout exactly. TRL expects exactly one completion per prompt it handed
to ``rollout_func``; :func:`trl_rows` returns them in that order, one per episode slot.

:func:`step_signal` is what our trainer's ``prepare`` does, on a batch whose rows cannot be
dropped (TRL's batch shapes are fixed): failed episodes and groups removed by the Dr.BoT
group filter keep their row with an all-zero loss mask and ``kept = False``; advantages
are computed on the kept rows only, exactly as our trainer computes them after dropping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spear.algo.advantages import to_token_level
from spear.rollout.batch import RolloutBatch
from spear.trainer.method import Method


@dataclass
class TrlRows:
    """What ``rollout_func`` returns to TRL, one entry per prompt slot (unpadded lists)."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    env_mask: list[list[int]]

    def as_dict(self) -> dict[str, list]:
        return {
            "prompt_ids": self.prompt_ids,
            "completion_ids": self.completion_ids,
            "logprobs": self.logprobs,
            "env_mask": self.env_mask,
        }


def slot_rows(batch: RolloutBatch, slots: int) -> np.ndarray:
    """Row of each episode slot ``[slots]`` (-1 where the episode produced no row)."""
    if batch.layout != "trajectory":
        raise ValueError("TRL rows need the trajectory layout (one row per episode)")
    index = np.full(slots, -1, dtype=np.int64)
    for slot, record in enumerate(batch.trajectories):
        if record.rows:
            index[slot] = record.rows[0]
    return index


def trl_rows(batch: RolloutBatch, slots: int, *, eos_token_id: int) -> TrlRows:
    """The rollout as TRL's ``prompt_ids / completion_ids / logprobs / env_mask``.

    ``logprobs`` are the sampler's (at the rollout temperature); ``env_mask`` is 1 on the
    tokens the model sampled. A slot whose episode produced no row (its environment failed
    at reset) gets a one-token completion (EOS) with mask 0, so it carries no gradient.
    """
    index = slot_rows(batch, slots)
    p = batch.prompt_length
    out = TrlRows([], [], [], [])
    for row in index:
        if row < 0:
            out.prompt_ids.append([eos_token_id])
            out.completion_ids.append([eos_token_id])
            out.logprobs.append([0.0])
            out.env_mask.append([0])
            continue
        prompt = batch.input_ids[row, :p][batch.attention_mask[row, :p].bool()]
        length = int(batch.attention_mask[row, p:].sum())
        out.prompt_ids.append(prompt.tolist())
        out.completion_ids.append(batch.responses[row, :length].tolist())
        out.logprobs.append(batch.sampling_log_prob[row, :length].tolist())
        out.env_mask.append(batch.response_mask[row, :length].tolist())
    return out


@dataclass
class StepSignal:
    """The learning signal of one rollout, per episode slot (``S`` slots, ``R`` response columns).

    Attributes:
        scores: shaped reward ``[S]`` (0 for slots not kept).
        loss_mask: ``[S, R]`` 1 on sampled tokens of kept, unfiltered rows.
        advantages: token-level advantages ``[S, R]``.
        old_log_prob: behaviour log-probs ``[S, R]`` (the sampler's), 0 off the loss mask.
        kept: ``[S]`` bool: the row survived failure removal and the group filter.
        live: the kept rows as a RolloutBatch (what our trainer keeps), with their
            ``scores``, ``mask``, behaviour log-probs and per-token ``advantages`` for the
            replay buffer.
        metrics: filter statistics, rows after the group filter and rows in the loss (kept
            and not zeroed by a response filter: the rows this step learns from).
    """

    scores: np.ndarray
    loss_mask: torch.Tensor
    advantages: torch.Tensor
    old_log_prob: torch.Tensor
    kept: np.ndarray
    live: RolloutBatch
    live_scores: np.ndarray
    live_mask: torch.Tensor
    live_old_log_prob: torch.Tensor
    live_advantages: torch.Tensor
    metrics: dict[str, float]


def step_signal(method: Method, batch: RolloutBatch, slots: int, step: int) -> StepSignal:
    """Steps 4-8 of spec 2.2 on ``batch`` (the same calls as ``Trainer.prepare``)."""
    alive = np.flatnonzero(~batch.failed)
    live = batch.select(alive)
    metrics: dict[str, float] = {}
    if len(live):
        scores = method.shape_rewards(live, step)
        mask, metrics = method.filter_responses(live)
        keep = method.filter_groups(live, step)
        live, scores, mask = live.select(keep), scores[keep], mask[torch.as_tensor(keep, dtype=torch.long)]
        alive = alive[keep]
    else:
        scores, mask = np.zeros(0), torch.zeros((0, batch.response_length))
    metrics["rollout/rows_after_group_filter"] = float(len(live))
    advantages = (
        to_token_level(method.advantages(live, scores), mask) if len(live) else torch.zeros_like(mask)
    )
    old_log_prob = live.sampling_log_prob * mask

    index = slot_rows(batch, slots)
    slot_of_row = {int(row): slot for slot, row in enumerate(index) if row >= 0}
    r = batch.response_length
    out_scores = np.zeros(slots)
    out_mask = torch.zeros((slots, r))
    out_adv = torch.zeros((slots, r))
    out_old = torch.zeros((slots, r))
    kept = np.zeros(slots, dtype=bool)
    for j, row in enumerate(alive):
        slot = slot_of_row[int(row)]
        kept[slot] = True
        out_scores[slot] = scores[j]
        width = mask.shape[1]
        out_mask[slot, :width] = mask[j]
        out_adv[slot, :width] = advantages[j]
        out_old[slot, :width] = old_log_prob[j]
    metrics["rollout/rows_in_loss"] = float((out_mask.sum(dim=1) > 0).sum())
    return StepSignal(
        scores=out_scores,
        loss_mask=out_mask,
        advantages=out_adv,
        old_log_prob=out_old,
        kept=kept,
        live=live,
        live_scores=scores,
        live_mask=mask,
        live_old_log_prob=old_log_prob,
        live_advantages=advantages,
        metrics=metrics,
    )


def fit_width(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x [S, R]`` cut or zero-padded on the right to ``[S, width]`` (TRL pads completions
    to the longest one, possibly to a multiple)."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))
