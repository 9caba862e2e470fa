"""Group-relative advantage estimators: GRPO and GiGPO (spec 3.8, 3.9, 8.11, 8.12).

Inputs are one value per row (a row is a turn in the verl-agent layout, a whole
trajectory in the math layout); groups are found by id, never by position
(spec 8.11). Outputs are per-row advantages ``[N]`` (float32 tensors); broadcast
them over response tokens with :func:`to_token_level`.

Estimators are registered by name so trainers can pick them from config::

    @register_advantage("my_estimator")
    def my_estimator(rewards, group_ids, **kwargs) -> torch.Tensor: ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from spear.algo._checks import as_float_array, as_ids, check_choice, check_positive, check_tensor
from spear.algo._groups import group_stats, trajectory_rewards

EPS = 1e-6
STATS_OVER = ("rows", "trajectories")
GIGPO_MODES = ("mean_norm", "mean_std_norm")

ADVANTAGE_ESTIMATORS: dict[str, Callable[..., torch.Tensor]] = {}


def register_advantage(name: str) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    def decorator(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in ADVANTAGE_ESTIMATORS:
            raise ValueError(f"advantage estimator '{name}' is already registered")
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn

    return decorator


def get_advantage(name: str) -> Callable[..., torch.Tensor]:
    check_choice("estimator", name, ADVANTAGE_ESTIMATORS)
    return ADVANTAGE_ESTIMATORS[name]


def group_mean_std(values: np.ndarray, codes: np.ndarray, *, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-group mean and std of ``values`` for dense group ``codes`` -> two ``[G]`` arrays.

    A group with a single member gets mean 0 and std 1, as verl does, so its lone
    sample keeps its raw score as advantage.
    """
    mean, std = group_stats(values, codes, ddof=ddof)
    single = np.bincount(codes, minlength=len(mean)) == 1
    mean[single], std[single] = 0.0, 1.0
    return mean, std


@register_advantage("grpo")
def grpo(
    rewards: Sequence[float] | np.ndarray | torch.Tensor,
    group_ids: Sequence[Any] | np.ndarray,
    *,
    normalize_by_std: bool = True,
    stats_over: str = "rows",
    traj_ids: Sequence[Any] | np.ndarray | None = None,
    eps: float = EPS,
) -> torch.Tensor:
    """GRPO outcome advantage per row (spec 3.8).

    ``A = (r - mu_g) / (sigma_g + eps)`` or ``r - mu_g`` (Dr.BoT: ``normalize_by_std=False``).

    Args:
        rewards: ``[N]`` scalar score of each row (the episode reward, plus shaping).
        group_ids: ``[N]`` group (task instance, ``uid``) of each row.
        stats_over: ``"rows"`` (official agent code: mu/sigma over all rows of the
            group, so long trajectories weigh more) or ``"trajectories"`` (each
            trajectory counts once: its rows' mean reward; needs ``traj_ids``).
            With one row per trajectory the two coincide. sigma is the unbiased std.
    """
    r = as_float_array("rewards", rewards)
    codes = as_ids("group_ids", group_ids, len(r))
    check_choice("stats_over", stats_over, STATS_OVER)
    check_positive("eps", eps, allow_zero=True)
    if stats_over == "rows":
        mean, std = group_mean_std(r, codes)
    else:
        if traj_ids is None:
            raise ValueError("traj_ids is required when stats_over='trajectories'")
        traj_reward, traj_group = trajectory_rewards(r, codes, as_ids("traj_ids", traj_ids, len(r)))
        mean, std = group_mean_std(traj_reward, traj_group)
    adv = r - mean[codes]
    if normalize_by_std:
        adv = adv / (std[codes] + eps)
    return torch.from_numpy(adv).float()


def discounted_returns(
    step_rewards: Sequence[float] | np.ndarray | torch.Tensor,
    traj_ids: Sequence[Any] | np.ndarray,
    turn_index: Sequence[int] | np.ndarray,
    *,
    gamma: float = 0.95,
) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} within each trajectory, ordered by ``turn_index`` (spec 3.9)."""
    r = as_float_array("step_rewards", step_rewards)
    traj = as_ids("traj_ids", traj_ids, len(r))
    turns = np.asarray(turn_index, dtype=np.int64)
    if turns.shape != r.shape:
        raise ValueError(f"turn_index has shape {turns.shape} but step_rewards has {r.shape}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    order = np.lexsort((-turns, traj))  # per trajectory, last turn first
    returns = np.empty_like(r)
    running, current = 0.0, -1
    for i in order:
        if traj[i] != current:
            running, current = 0.0, traj[i]
        running = r[i] + gamma * running
        returns[i] = running
    return returns


@register_advantage("gigpo")
def gigpo(
    rewards: Sequence[float] | np.ndarray | torch.Tensor,
    group_ids: Sequence[Any] | np.ndarray,
    *,
    anchor_obs: Sequence[Any],
    step_returns: Sequence[float] | np.ndarray | torch.Tensor,
    step_weight: float = 1.0,
    mode: str = "mean_std_norm",
    step_penalty: Sequence[float] | np.ndarray | None = None,
    eps: float = EPS,
) -> torch.Tensor:
    """GiGPO advantage ``A^E + w * A^S`` per row (spec 3.9).

    * ``A^E``: GRPO over the group's rows (turn-weighted), std-normalised iff
      ``mode == "mean_std_norm"`` (spec 8.12: Dr.BoT keeps it).
    * ``A^S``: rows of one group whose ``anchor_obs`` (the raw environment
      observation of that turn) are identical form a step group; each row's
      discounted return is normalised within it the same way. Singleton step groups get 0.
    * ``step_returns``: ``[N]`` each row's discounted return from its turn,
      :func:`discounted_returns` over the *whole* trajectories, computed before any filter
      drops a row: the official code computes them before ``_filter_rollout``
      (``core_gigpo.py``), and a return computed on a trajectory with a dropped turn is a
      different number (rewards [0, 0, 0, 10] at gamma 0.95: [8.57, 9.03, 9.5, 10]; without
      the last turn [0, 0, 0]).
    * ``step_penalty``: subtracted from a row's own return after discounting (the
      invalid-action penalty is not propagated to earlier turns).
    """
    check_choice("mode", mode, GIGPO_MODES)
    r = as_float_array("rewards", rewards)
    n = len(r)
    groups = as_ids("group_ids", group_ids, n)
    if len(anchor_obs) != n:
        raise ValueError(f"anchor_obs has {len(anchor_obs)} entries but there are {n} rows")
    std_norm = mode == "mean_std_norm"
    episode = grpo(r, groups, normalize_by_std=std_norm, eps=eps).double().numpy()
    returns = as_float_array("step_returns", step_returns)
    if len(returns) != n:
        raise ValueError(f"step_returns has {len(returns)} entries but there are {n} rows")
    if step_penalty is not None:
        returns = returns - as_float_array("step_penalty", step_penalty)
    step_groups = as_ids("anchor_obs", list(zip(groups.tolist(), anchor_obs, strict=True)), n)
    mean, std = group_mean_std(returns, step_groups)
    counts = np.bincount(step_groups)
    step = returns - mean[step_groups]
    if std_norm:
        step = step / (std[step_groups] + eps)
    step[counts[step_groups] == 1] = 0.0
    return torch.from_numpy(episode + step_weight * step).float()


def to_token_level(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Broadcast per-row advantages ``[N]`` over tokens: ``[N] x [N, T] -> [N, T]`` (zero where masked)."""
    check_tensor("advantages", advantages, ndim=1)
    check_tensor("response_mask", response_mask, ndim=2)
    if response_mask.shape[0] != advantages.shape[0]:
        raise ValueError(
            f"response_mask has {response_mask.shape[0]} rows but advantages has {advantages.shape[0]}"
        )
    return advantages.to(response_mask.device).unsqueeze(-1) * response_mask.to(torch.float32)
