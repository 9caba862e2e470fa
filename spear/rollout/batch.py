"""The rollout batch: padded token tensors plus per-row and per-trajectory records.

A *row* is one training sample (spec 2.1). In the ``turn`` layout (verl-agent,
spec 2.2) a row is one turn: its prompt and that turn's generated response. In
the ``trajectory`` layout (math, spec 2.3; TRL's ``tool_mask``) a row is a whole
episode: the first prompt, then assistant tokens and observation tokens
interleaved, with ``response_mask`` = 1 exactly on the tokens the model sampled.

Tensors follow verl's layout: the prompt region is left-padded to ``prompt_length``
columns, the response region right-padded to ``R`` columns::

    input_ids      [N, P + R]   pad | prompt || response | pad
    attention_mask [N, P + R]   1 on real tokens
    position_ids   [N, P + R]   cumsum(attention_mask) - 1, clipped at 0
    responses      [N, R]       input_ids[:, P:]
    response_mask  [N, R]       1 on sampled tokens (0 on observations, padding)
    old_log_prob   [N, R]       behaviour log-prob at T=1 of each sampled token, 0 elsewhere
    sampling_log_prob [N, R]    log-prob under the sampler actually used (temperature, top-p)

This module is a plain container; advantages and losses live in :mod:`spear.algo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

# Per-row metadata arrays (length N), in the order they are documented in docs/ROLLOUT.md.
ROW_FIELDS: tuple[str, ...] = (
    "group_id",
    "traj_id",
    "traj_index",
    "turn_index",
    "anchor_obs",
    "step_reward",
    "invalid_action",
    "format_error",
    "tool_calls",
    "env_done",
    "is_last_turn",
    "finish_reason",
    "failed",
)
_ROW_DTYPES: dict[str, Any] = {
    "group_id": object,
    "traj_id": object,
    "traj_index": np.int64,
    "turn_index": np.int64,
    "anchor_obs": object,
    "step_reward": np.float32,
    "invalid_action": bool,
    "format_error": bool,
    "tool_calls": np.int64,
    "env_done": bool,
    "is_last_turn": bool,
    "finish_reason": object,
    "failed": bool,
}
TENSOR_FIELDS: tuple[str, ...] = (
    "input_ids",
    "attention_mask",
    "position_ids",
    "responses",
    "response_mask",
    "old_log_prob",
    "sampling_log_prob",
)


@dataclass
class TrajectoryRecord:
    """One episode: who it belongs to, how it went, and which rows hold it.

    ``turns`` counts environment steps (the agent tool-use count n_k of spec 2.1);
    ``tool_calls`` sums the environment's ``info["tool_calls"]`` (the math n_k);
    ``failed`` means the environment broke (mask the episode out of the loss); ``error`` then
    holds what it raised, with the traceback when there was one;
    ``truncated`` means a length limit cut a response or the episode.
    """

    group_id: str
    traj_id: str
    seed: int
    turns: int = 0
    tool_calls: int = 0
    invalid_actions: int = 0
    format_errors: int = 0
    won: bool = False
    score: float = 0.0
    env_reward: float = 0.0
    done: bool = False
    failed: bool = False
    truncated: bool = False
    error: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


@dataclass
class Row:
    """One row before padding (built by the engine)."""

    prompt: list[int]
    response: list[int]
    mask: list[int]
    logprobs: list[float]
    sampling_logprobs: list[float]
    meta: dict[str, Any]


def _mean(values: list[float] | list[bool] | list[int]) -> float:
    return float(np.mean(values)) if values else 0.0


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


@dataclass
class RolloutBatch:
    """Padded rows of one rollout (see the module docstring for the tensor layout)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    responses: torch.Tensor
    response_mask: torch.Tensor
    old_log_prob: torch.Tensor
    sampling_log_prob: torch.Tensor
    prompt_length: int
    pad_token_id: int
    layout: str
    group_id: np.ndarray
    traj_id: np.ndarray
    traj_index: np.ndarray
    turn_index: np.ndarray
    anchor_obs: np.ndarray
    step_reward: np.ndarray
    invalid_action: np.ndarray
    format_error: np.ndarray
    tool_calls: np.ndarray
    env_done: np.ndarray
    is_last_turn: np.ndarray
    finish_reason: np.ndarray
    failed: np.ndarray
    trajectories: list[TrajectoryRecord]

    @classmethod
    def from_rows(
        cls, rows: Sequence[Row], trajectories: list[TrajectoryRecord], *, pad_token_id: int, layout: str
    ) -> RolloutBatch:
        """Pad ``rows`` into tensors (prompt left-padded, response right-padded)."""
        n = len(rows)
        p = max((len(r.prompt) for r in rows), default=0)
        r_len = max((len(r.response) for r in rows), default=0)
        input_ids = torch.full((n, p + r_len), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((n, p + r_len), dtype=torch.long)
        response_mask = torch.zeros((n, r_len), dtype=torch.long)
        old_log_prob = torch.zeros((n, r_len), dtype=torch.float32)
        sampling_log_prob = torch.zeros((n, r_len), dtype=torch.float32)
        for i, row in enumerate(rows):
            lp, lr = len(row.prompt), len(row.response)
            input_ids[i, p - lp : p] = torch.tensor(row.prompt, dtype=torch.long)
            input_ids[i, p : p + lr] = torch.tensor(row.response, dtype=torch.long)
            attention_mask[i, p - lp : p + lr] = 1
            response_mask[i, :lr] = torch.tensor(row.mask, dtype=torch.long)
            old_log_prob[i, :lr] = torch.tensor(row.logprobs, dtype=torch.float32)
            sampling_log_prob[i, :lr] = torch.tensor(row.sampling_logprobs, dtype=torch.float32)
        meta = {
            name: np.array([row.meta[name] for row in rows], dtype=_ROW_DTYPES[name]).reshape(n)
            for name in ROW_FIELDS
        }
        return cls(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=_position_ids(attention_mask),
            responses=input_ids[:, p:].clone(),
            response_mask=response_mask,
            old_log_prob=old_log_prob,
            sampling_log_prob=sampling_log_prob,
            prompt_length=p,
            pad_token_id=pad_token_id,
            layout=layout,
            trajectories=trajectories,
            **meta,
        )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def response_length(self) -> int:
        return int(self.responses.shape[1])

    def select(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> RolloutBatch:
        """The rows at ``indices`` (repeats allowed), with the trajectories they belong to."""
        idx = np.asarray(torch.as_tensor(indices, dtype=torch.long).cpu(), dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"row index out of range for a batch of {len(self)} rows")
        t_idx = torch.as_tensor(idx, dtype=torch.long, device=self.input_ids.device)
        tensors = {name: getattr(self, name)[t_idx] for name in TENSOR_FIELDS}
        meta = {name: getattr(self, name)[idx] for name in ROW_FIELDS}
        kept = sorted(set(meta["traj_index"].tolist()))
        remap = {old: new for new, old in enumerate(kept)}
        meta["traj_index"] = np.array([remap[t] for t in meta["traj_index"].tolist()], dtype=np.int64)
        trajectories = [replace(self.trajectories[old], rows=[]) for old in kept]
        for row, t in enumerate(meta["traj_index"].tolist()):
            trajectories[t].rows.append(row)
        return replace(self, **tensors, **meta, trajectories=trajectories)

    def trajectory_major(self) -> RolloutBatch:
        """The rows reordered trajectory by trajectory, each in turn order (the engine emits
        them turn by turn across episodes). The official trainer's rows come this way, so
        each mini-batch cut from them holds whole trajectories."""
        return self.select(np.lexsort((self.turn_index, self.traj_index)))

    def drop_failed(self) -> RolloutBatch:
        """The rows of trajectories whose environment did not fail."""
        return self.select(np.flatnonzero(~self.failed))

    def to(self, device: torch.device | str) -> RolloutBatch:
        """The same batch with its tensors on ``device``."""
        return replace(self, **{name: getattr(self, name).to(device) for name in TENSOR_FIELDS})

    @classmethod
    def concat(cls, batches: Sequence[RolloutBatch]) -> RolloutBatch:
        """Stack batches row-wise, re-padding prompts and responses to common widths."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        first = batches[0]
        if any(b.pad_token_id != first.pad_token_id or b.layout != first.layout for b in batches):
            raise ValueError("cannot concatenate batches with different pad tokens or layouts")
        p = max(b.prompt_length for b in batches)
        r_len = max(b.response_length for b in batches)
        parts = [b._padded_to(p, r_len) for b in batches]
        tensors = {name: torch.cat([getattr(b, name) for b in parts]) for name in TENSOR_FIELDS}
        meta = {name: np.concatenate([getattr(b, name) for b in parts]) for name in ROW_FIELDS}
        trajectories: list[TrajectoryRecord] = []
        traj_offsets, row_offset = [], 0
        for b in parts:
            traj_offsets.append(len(trajectories))
            trajectories += [replace(t, rows=[r + row_offset for r in t.rows]) for t in b.trajectories]
            row_offset += len(b)
        meta["traj_index"] = np.concatenate(
            [b.traj_index + off for b, off in zip(parts, traj_offsets, strict=True)]
        ).astype(np.int64)
        return replace(first, **tensors, **meta, prompt_length=p, trajectories=trajectories)

    def _padded_to(self, p: int, r_len: int) -> RolloutBatch:
        """This batch with the prompt region left-padded to ``p`` and responses right-padded to ``r_len``."""
        left, right = p - self.prompt_length, r_len - self.response_length
        if left == 0 and right == 0:
            return self

        def pad(t: torch.Tensor, value: float, lo: int, hi: int) -> torch.Tensor:
            return torch.nn.functional.pad(t, (lo, hi), value=value)

        attention_mask = pad(self.attention_mask, 0, left, right)
        return replace(
            self,
            input_ids=pad(self.input_ids, self.pad_token_id, left, right),
            attention_mask=attention_mask,
            position_ids=_position_ids(attention_mask),
            responses=pad(self.responses, self.pad_token_id, 0, right),
            response_mask=pad(self.response_mask, 0, 0, right),
            old_log_prob=pad(self.old_log_prob, 0.0, 0, right),
            sampling_log_prob=pad(self.sampling_log_prob, 0.0, 0, right),
            prompt_length=p,
        )

    def stats(self) -> dict[str, float]:
        """Episode and token statistics for logging (failed episodes excluded from rates)."""
        ok = [t for t in self.trajectories if not t.failed]
        mask_tokens = self.response_mask.sum(dim=1).float()
        return {
            "episodes": float(len(self.trajectories)),
            "episodes_failed": float(len(self.trajectories) - len(ok)),
            "success_rate": _mean([t.won for t in ok]),
            "score": _mean([t.score for t in ok]),
            "env_reward": _mean([t.env_reward for t in ok]),
            "turns": _mean([t.turns for t in ok]),
            "tool_calls": _mean([t.tool_calls for t in ok]),
            "invalid_action_rate": _mean([t.invalid_actions / max(t.turns, 1) for t in ok]),
            "format_error_rate": _mean([t.format_errors / max(t.turns, 1) for t in ok]),
            "truncated_rate": _mean([t.truncated for t in ok]),
            "rows": float(len(self)),
            "response_tokens_mean": float(mask_tokens.mean()) if len(self) else 0.0,
            "generated_tokens": float(mask_tokens.sum()) if len(self) else 0.0,
        }
