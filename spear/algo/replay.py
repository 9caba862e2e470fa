"""The SIL replay buffer with percentile advantage recalibration (spec 3.2, 3.3, 8.1-8.6).

Per training step ``t`` the trainer does (spec 2.2, steps 9-12)::

    if buffer.ready():
        replay = buffer.sample()       # before the actor update: only data from steps < t
    ...update the actor on the on-policy batch, then lambda_sil(t) * SIL loss on replay...
    buffer.add(rows, rewards=..., advantages=..., group_ids=..., traj_ids=..., step=t)

``add`` first prunes stale entries, then records the batch's per-group reward
statistics in the baseline buffer, then stores the rows with positive advantage
(together with their behaviour log-probs, which the caller puts in ``rows``).

``rows`` is a mapping of per-row data with a leading dimension N: tensors (any
shape; on sampling, tensors whose trailing sizes differ between steps are
right-padded with ``pad_values[key]`` or 0), numpy arrays, or lists. The buffer never
looks inside them.

Switches (official code vs paper vs alternatives, docs/DESIGN.md):

* ``recalibration``: ``"percentile"`` (official scripts, p50) or ``"decay"`` (stored
  advantage x ``decay``, no dropping).
* ``keep_rule``: ``">="`` (agent code) or ``">"`` (math code) on the recalibrated advantage.
* ``trigger``: ``"capacity"`` (official: > ``trigger_factor`` x capacity rows above the
  baseline) or ``"min_samples"`` (replay every step once >= ``min_samples`` such rows).
* ``sampling``: ``"uniform"`` (official: power-of-two subset) or ``"prioritized"``
  (probability proportional to recalibrated advantage ** ``alpha``).
* ``clear_after_use``: clear every entry after a draw (official) or keep them.
* ``stale_reference``: staleness measured from the newest entry (official) or the current step;
  the window is ``min(tolerate_steps, max_tolerate_steps)`` (official cap 10).
* ``store_threshold``: rows enter the buffer iff advantage > threshold (official code 0;
  the README documents 1, spec 8.1).
* ``std_over``: with ``normalize_by_std`` (GRPO / GiGPO + SPEAR, spec 8.14), the p-th
  percentile of group reward stds is taken over ``"all"`` groups (official) or over the
  ``"mixed"`` ones, whose rewards differ. Where more than half of the groups are uniform
  (all fail or all win alike) the official s_p is 0 and every replayed advantage is
  (R - b) / 1e-6, about 1e6-1e7 (docs/DESIGN.md, "Replay advantages when most groups are
  uniform").
* ``capacity``: a fixed N_D (official scripts: 2048, or 32 in the small math script), or
  ``None`` to size it from the first batch added: :func:`capacity_for_rows` with
  ``capacity_ratio`` (docs/DESIGN.md, "SIL buffer capacity").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from spear.algo._checks import as_float_array, check_choice
from spear.algo.filters import group_reward_std, largest_power_of_two

RECALIBRATIONS = ("percentile", "decay")
KEEP_RULES = (">=", ">")
TRIGGERS = ("capacity", "min_samples")
STALE_REFERENCES = ("newest", "current")
STD_OVER = ("all", "mixed")
SAMPLINGS = ("uniform", "prioritized")


def capacity_for_rows(rows_per_step: int, ratio: float = 0.5) -> int:
    """N_D for a run whose steps produce ``rows_per_step`` rows: the largest power of two
    <= ``ratio * rows_per_step`` (at least 1).

    The released scripts' N_D over the rows of one step (spec 7.1, 7.2) is 2048 / 2048 = 1.0
    for full-scale math (128 prompts x 16, one row per trajectory), 32 / 64 = 0.5 for the
    small math script (4 x 16), and 2048 / (256 x turns) for the agents (32 tasks x 8, one
    row per turn): about 0.4 with ALFWorld's ~20 turns, about 1.0 with WebShop's ~8. The
    default 0.5 sits inside that range, and with the official trigger (> 1.5 N_D qualifying
    rows within the staleness window) it fires once about 0.75 / q steps' qualifying rows
    have gathered, q being the share of a step's rows above the baseline.
    """
    if (
        isinstance(rows_per_step, bool)
        or not isinstance(rows_per_step, (int, np.integer))
        or rows_per_step < 0
    ):
        raise ValueError(f"rows_per_step must be a non-negative integer, got {rows_per_step!r}")
    if not ratio > 0:
        raise ValueError(f"capacity ratio must be > 0, got {ratio}")
    return max(1, largest_power_of_two(int(ratio * rows_per_step)))


@dataclass(frozen=True)
class ReplayConfig:
    """Replay-buffer settings; defaults follow the released agent scripts (spec 7.1).

    Attributes (the switches are described in the module docstring):
        capacity: N_D, the largest replay batch; the official trigger fires above 1.5 x N_D.
            ``None``: set by the first :meth:`ReplayBuffer.add` to
            ``capacity_for_rows(rows added, capacity_ratio)``.
        capacity_ratio: N_D over the rows of a step, used when ``capacity`` is ``None``.
        baseline_capacity: group statistics kept in B (FIFO by whole steps).
        tolerate_steps: staleness window in steps.
        percentile: the baseline percentile (50 = median).
        decay: advantage factor in ``recalibration="decay"`` mode.
        normalize_by_std: recalibrate as (R - b) / (s + eps), for GRPO with std-norm (spec 8.14).
        std_over: the groups whose stds the percentile s is taken over: "all" (official) or
            "mixed" (those whose std is > 0).
        baseline_ddof: 0 = population std of group rewards (agent), 1 = unbiased (math).
        max_rows: hard bound on stored rows (default 8 x capacity).
    """

    capacity: int | None = 2048
    capacity_ratio: float = 0.5
    baseline_capacity: int = 10240
    tolerate_steps: int = 5
    max_tolerate_steps: int = 10
    stale_reference: str = "newest"
    store_threshold: float = 0.0
    recalibration: str = "percentile"
    percentile: float = 50.0
    decay: float = 0.1
    normalize_by_std: bool = False
    std_over: str = "all"
    keep_rule: str = ">="
    trigger: str = "capacity"
    trigger_factor: float = 1.5
    min_samples: int = 1
    sampling: str = "uniform"
    alpha: float = 1.0
    power_of_two: bool = True
    clear_after_use: bool = True
    baseline_ddof: int = 0
    max_rows: int | None = None
    eps: float = 1e-6

    def __post_init__(self) -> None:
        check_choice("recalibration", self.recalibration, RECALIBRATIONS)
        check_choice("keep_rule", self.keep_rule, KEEP_RULES)
        check_choice("trigger", self.trigger, TRIGGERS)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("stale_reference", self.stale_reference, STALE_REFERENCES)
        check_choice("std_over", self.std_over, STD_OVER)
        for name in ("capacity", "baseline_capacity", "min_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not self.capacity_ratio > 0:
            raise ValueError(f"capacity_ratio must be > 0, got {self.capacity_ratio}")
        for name in ("tolerate_steps", "max_tolerate_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile}")
        if not 0 < self.decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if not self.trigger_factor > 0:
            raise ValueError(f"trigger_factor must be > 0, got {self.trigger_factor}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.baseline_ddof not in (0, 1):
            raise ValueError(f"baseline_ddof must be 0 or 1, got {self.baseline_ddof}")
        if self.max_rows is not None and self.capacity is not None and self.max_rows < self.capacity:
            raise ValueError(f"max_rows must be >= capacity ({self.capacity}), got {self.max_rows}")

    @property
    def row_limit(self) -> int | None:
        """Hard bound on stored rows, so memory stays bounded even if the buffer never fires
        (None while the capacity is not sized yet)."""
        if self.max_rows is not None:
            return self.max_rows
        return None if self.capacity is None else 8 * self.capacity


@dataclass
class _Entry:
    rows: dict[str, Any]
    rewards: np.ndarray  # [n] raw reward sum R_j at collection time
    advantages: np.ndarray  # [n] on-policy advantage at collection time
    step: int

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass
class ReplayBatch:
    """A replay draw: ``rows`` (same keys as added), recalibrated ``advantages [n]``,
    raw ``rewards [n]``, collection ``steps [n]``, and the ``baseline`` used (None in decay mode)."""

    rows: dict[str, Any]
    advantages: torch.Tensor
    rewards: np.ndarray
    steps: np.ndarray
    baseline: tuple[float, float] | None

    def __len__(self) -> int:
        return len(self.rewards)


def _num_rows(rows: Mapping[str, Any]) -> int:
    sizes = {key: len(value) for key, value in rows.items()}
    if not sizes:
        raise ValueError("rows must hold at least one field")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"all fields of rows must have the same number of rows, got {sizes}")
    return next(iter(sizes.values()))


def _select(value: Any, idx: np.ndarray) -> Any:
    if isinstance(value, torch.Tensor):
        return value[torch.from_numpy(idx).to(value.device)]
    if isinstance(value, np.ndarray):
        return value[idx]
    return [value[i] for i in idx]


def _concat(values: list[Any], pad_value: float) -> Any:
    first = values[0]
    if len(values) == 1:
        return first
    if isinstance(first, torch.Tensor):
        if first.dim() > 1:
            width = max(v.shape[1] for v in values)
            values = [
                torch.nn.functional.pad(v, (0, 0) * (v.dim() - 2) + (0, width - v.shape[1]), value=pad_value)
                for v in values
            ]
        return torch.cat(values)
    if isinstance(first, np.ndarray):
        return np.concatenate(values)
    return [item for v in values for item in v]


class ReplayBuffer:
    """SIL replay buffer D plus the baseline buffer B of per-group reward statistics."""

    def __init__(self, config: ReplayConfig | None = None, *, seed: int = 0, **overrides: Any) -> None:
        base = config if config is not None else ReplayConfig()
        self.config = ReplayConfig(**{**asdict(base), **overrides}) if overrides else base
        self.entries: list[_Entry] = []
        self.baseline_means: list[tuple[int, np.ndarray]] = []  # (step, [mu_g ...]) FIFO by step
        self.baseline_stds: list[tuple[int, np.ndarray]] = []
        self.rng = np.random.default_rng(seed)
        self.pad_values: dict[str, float] = {}

    # ----------------------------------------------------------------- bookkeeping
    def __len__(self) -> int:
        return sum(len(e) for e in self.entries)

    @property
    def baseline_size(self) -> int:
        """Number of stored group statistics in B."""
        return sum(len(m) for _, m in self.baseline_means)

    def baseline(self) -> tuple[float, float] | None:
        """(b_p, s_p): the configured percentile of stored group means and stds (spec 3.3); the
        stds of every group (official) or of the groups whose rewards differ (``std_over``;
        s_p = 0 when there is none)."""
        if not self.baseline_means:
            return None
        means = np.concatenate([m for _, m in self.baseline_means])
        stds = np.concatenate([s for _, s in self.baseline_stds])
        if self.config.std_over == "mixed":
            stds = stds[stds > 0]
        q = self.config.percentile
        return float(np.percentile(means, q)), float(np.percentile(stds, q)) if len(stds) else 0.0

    def prune_stale(self, current_step: int) -> None:
        """Drop entries more than min(tolerate_steps, max_tolerate_steps) steps older than the reference:
        the newest stored entry (official, spec 8.5) or ``current_step`` (``stale_reference="current"``)."""
        if not self.entries:
            return
        window = min(self.config.tolerate_steps, self.config.max_tolerate_steps)
        reference = self.entries[-1].step if self.config.stale_reference == "newest" else current_step
        self.entries = [e for e in self.entries if abs(e.step - reference) <= window]

    def update_baseline(
        self,
        rewards: Sequence[float] | np.ndarray | torch.Tensor,
        group_ids: Sequence[Any] | np.ndarray,
        traj_ids: Sequence[Any] | np.ndarray | None,
        step: int,
    ) -> None:
        """Append this step's per-group reward mean/std to B, first evicting whole old steps
        while B holds more than ``baseline_capacity`` statistics (spec 3.3)."""
        _, mean, std = group_reward_std(rewards, group_ids, traj_ids, ddof=self.config.baseline_ddof)
        while self.baseline_means and self.baseline_size > self.config.baseline_capacity:
            self.baseline_means.pop(0)
            self.baseline_stds.pop(0)
        self.baseline_means.append((step, mean))
        self.baseline_stds.append((step, std))

    # ----------------------------------------------------------------- add
    def add(
        self,
        rows: Mapping[str, Any],
        *,
        rewards: Sequence[float] | np.ndarray | torch.Tensor,
        advantages: Sequence[float] | np.ndarray | torch.Tensor,
        group_ids: Sequence[Any] | np.ndarray,
        step: int,
        traj_ids: Sequence[Any] | np.ndarray | None = None,
        eligible: Sequence[bool] | np.ndarray | None = None,
        pad_values: Mapping[str, float] | None = None,
    ) -> int:
        """Record step ``step``'s processed batch (spec 2.2 steps 11-12); return rows stored.

        Args:
            rows: per-row fields, leading dim N (include ``old_log_prob``: the behaviour
                log-probs the SIL loss needs).
            rewards: ``[N]`` raw reward sum of each row (shaped reward at collection time).
            advantages: ``[N]`` per-row on-policy advantage A (of a token-level tensor,
                the mean over the row's valid tokens: the official ``update_batch`` tests
                the padded mean's sign, the same as A's, and decay mode scales A itself).
            group_ids / traj_ids: the row's group and trajectory (for B's statistics).
            eligible: optional ``[N]`` extra condition (math: trajectory made >= 1 tool call).
        """
        n = _num_rows(rows)
        r = as_float_array("rewards", rewards)
        adv = as_float_array("advantages", advantages)
        for name, arr in (("rewards", r), ("advantages", adv)):
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} entries but rows has {n}")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"step must be an int, got {step!r}")
        if self.entries and step < self.entries[-1].step:
            raise ValueError(f"step {step} is older than the newest stored step {self.entries[-1].step}")
        if pad_values:
            self.pad_values.update(pad_values)
        if self.config.capacity is None and n > 0:
            self.config = replace(self.config, capacity=capacity_for_rows(n, self.config.capacity_ratio))

        self.prune_stale(int(step))
        self.update_baseline(r, group_ids, traj_ids, int(step))
        keep = adv > self.config.store_threshold
        if eligible is not None:
            extra = np.asarray(eligible, dtype=bool)
            if extra.shape != (n,):
                raise ValueError(f"eligible has shape {extra.shape}, expected ({n},)")
            keep &= extra
        idx = np.flatnonzero(keep)
        if len(idx):
            # a full selection still copies: the caller may reuse its buffers next step
            stored = {key: _select(value, idx) for key, value in rows.items()}
            self.entries.append(_Entry(stored, r[idx], adv[idx], int(step)))
            self._enforce_row_limit()
        return len(idx)

    def _enforce_row_limit(self) -> None:
        assert self.config.row_limit is not None, "add() sizes the capacity before storing"
        excess = len(self) - self.config.row_limit
        while excess > 0:
            oldest = self.entries[0]
            if len(oldest) <= excess:
                self.entries.pop(0)
                excess -= len(oldest)
                continue
            idx = np.arange(excess, len(oldest))
            self.entries[0] = _Entry(
                {k: _select(v, idx) for k, v in oldest.rows.items()},
                oldest.rewards[idx],
                oldest.advantages[idx],
                oldest.step,
            )
            excess = 0

    # ----------------------------------------------------------------- trigger and draw
    def num_qualifying(self) -> int:
        """Rows expected to survive recalibration: raw reward strictly above the baseline
        (each entry's own mean reward while B is empty); every row in decay mode."""
        if self.config.recalibration == "decay":
            return len(self)
        base = self.baseline()
        if base is None:
            return int(sum((e.rewards > e.rewards.mean()).sum() for e in self.entries))
        return int(sum((e.rewards > base[0]).sum() for e in self.entries))

    def ready(self) -> bool:
        """Trigger (spec 3.2): official ``> trigger_factor * capacity`` qualifying rows,
        or ``>= min_samples`` with ``trigger="min_samples"``."""
        count = self.num_qualifying()
        if self.config.trigger == "capacity":
            capacity = self.config.capacity
            return capacity is not None and count > self.config.trigger_factor * capacity
        return count >= self.config.min_samples

    def recalibrate(
        self, rewards: np.ndarray, stored: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """Recalibrated advantages and the keep mask for stored rows (spec 3.3)."""
        cfg = self.config
        if cfg.recalibration == "decay":
            return stored * cfg.decay, np.ones(len(stored), dtype=bool), None
        base = self.baseline()
        if base is None:
            raise ValueError("the baseline buffer is empty: add at least one batch before sampling")
        b, s = base
        adv = rewards - b
        if cfg.normalize_by_std:
            adv = adv / (s + cfg.eps)
        keep = adv >= 0 if cfg.keep_rule == ">=" else adv > 0
        return adv, keep, base

    def _draw(self, weights: np.ndarray, size: int) -> np.ndarray:
        if self.config.sampling == "uniform":
            return self.rng.permutation(len(weights))[:size]
        priority = np.power(np.maximum(weights, 0.0), self.config.alpha)
        positive = int((priority > 0).sum())
        if positive == 0:
            priority, positive = np.ones_like(priority), len(priority)
        size = min(size, positive)
        return self.rng.choice(len(weights), size=size, replace=False, p=priority / priority.sum())

    def sample(self, min_rows: int = 1) -> ReplayBatch | None:
        """Build one replay batch (spec 3.2 "Consumption"); None if fewer than ``min_rows``.

        Recalibrate, drop rows failing ``keep_rule``, draw ``min(capacity, pow2(#kept))``
        rows (or ``min(capacity, #kept)`` without ``power_of_two``), then clear the
        buffer (``clear_after_use``; the baseline buffer is kept either way).
        """
        if not self.entries:
            return None
        cfg = self.config
        rewards = np.concatenate([e.rewards for e in self.entries])
        stored = np.concatenate([e.advantages for e in self.entries])
        steps = np.concatenate([np.full(len(e), e.step) for e in self.entries])
        adv, keep, base = self.recalibrate(rewards, stored)
        kept = np.flatnonzero(keep)
        size = largest_power_of_two(len(kept)) if cfg.power_of_two else len(kept)
        assert cfg.capacity is not None, "add() sizes the capacity before storing"
        size = min(size, cfg.capacity)
        chosen = kept[self._draw(adv[kept], size)] if size > 0 else kept[:0]
        batch = None
        if len(chosen) >= max(1, min_rows):
            chosen = np.sort(chosen)
            batch = ReplayBatch(
                rows=self._gather(chosen),
                advantages=torch.from_numpy(adv[chosen]).float(),
                rewards=rewards[chosen],
                steps=steps[chosen],
                baseline=base,
            )
        if cfg.clear_after_use:
            self.entries = []
        return batch

    def _gather(self, chosen: np.ndarray) -> dict[str, Any]:
        """Rows at sorted global indices ``chosen``, copying only the selected rows of each entry."""
        bounds = np.cumsum([0] + [len(e) for e in self.entries])
        parts = [
            (entry, chosen[(chosen >= lo) & (chosen < hi)] - lo)
            for entry, lo, hi in zip(self.entries, bounds[:-1], bounds[1:], strict=True)
        ]
        parts = [(entry, idx) for entry, idx in parts if len(idx)]
        return {
            key: _concat(
                [_select(entry.rows[key], idx) for entry, idx in parts], self.pad_values.get(key, 0.0)
            )
            for key in self.entries[0].rows
        }

    def clear(self) -> None:
        """Empty D (the baseline buffer B is kept)."""
        self.entries = []

    # ----------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: entries, baseline buffer, RNG state, config."""
        return {
            "config": asdict(self.config),
            "entries": [
                {"rows": e.rows, "rewards": e.rewards, "advantages": e.advantages, "step": e.step}
                for e in self.entries
            ],
            "baseline_means": [(s, m) for s, m in self.baseline_means],
            "baseline_stds": [(s, v) for s, v in self.baseline_stds],
            "rng": self.rng.bit_generator.state,
            "pad_values": dict(self.pad_values),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = {"config", "entries", "baseline_means", "baseline_stds", "rng"} - set(state)
        if missing:
            raise ValueError(f"replay buffer state is missing {sorted(missing)}")
        self.config = ReplayConfig(**state["config"])
        self.entries = [
            _Entry(
                dict(e["rows"]),
                np.asarray(e["rewards"], dtype=np.float64),
                np.asarray(e["advantages"], dtype=np.float64),
                int(e["step"]),
            )
            for e in state["entries"]
        ]
        self.baseline_means = [(int(s), np.asarray(m, dtype=np.float64)) for s, m in state["baseline_means"]]
        self.baseline_stds = [(int(s), np.asarray(v, dtype=np.float64)) for s, v in state["baseline_stds"]]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self.pad_values = dict(state.get("pad_values", {}))
