"""Group statistics by id, shared by the advantage estimators, the group filter and the replay baseline."""

from __future__ import annotations

import numpy as np


def group_stats(values: np.ndarray, codes: np.ndarray, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group mean and std of ``values`` for dense group ``codes`` -> two ``[G]`` arrays."""
    num = codes.max() + 1
    counts = np.bincount(codes, minlength=num).astype(np.float64)
    mean = np.bincount(codes, weights=values, minlength=num) / counts
    sq_dev = np.bincount(codes, weights=(values - mean[codes]) ** 2, minlength=num)
    return mean, np.sqrt(sq_dev / np.maximum(counts - ddof, 1))


def trajectory_rewards(
    values: np.ndarray, codes: np.ndarray, traj: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each trajectory's mean row value and its group code: ``[T]`` values, ``[T]`` group codes."""
    num = traj.max() + 1
    means = np.bincount(traj, weights=values, minlength=num) / np.bincount(traj, minlength=num)
    traj_group = np.zeros(num, dtype=np.int64)
    traj_group[traj] = codes
    return means, traj_group
