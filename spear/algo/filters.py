"""Dr.BoT response filters and the low-variance group filter (spec 3.7).

Response filters flag rows; a flagged row keeps its place in the batch (and in the
group statistics) but its response mask is zeroed, so it has no policy-gradient
contribution. The group filter keeps the groups whose rewards vary most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from spear.algo._checks import as_float_array, as_ids, check_choice, check_tensor
from spear.algo._groups import group_stats, trajectory_rewards

UNREADABLE_MARKERS = ("\ufffd", "ï¿½", "ï¼\ufffd", "ï¼Ÿ", "Ġï¿½")
RESPONSE_FLAGS = ("overlong", "incomplete", "repetitive", "unreadable")
GROUP_FILTER_KINDS = ("std", "std_rev")


def is_overlong(
    response_lengths: Sequence[int] | np.ndarray | torch.Tensor, max_response_len: int
) -> np.ndarray:
    """valid response length >= max_response_len (generation hit the limit)."""
    if max_response_len <= 0:
        raise ValueError(f"max_response_len must be > 0, got {max_response_len}")
    lengths = torch.as_tensor(response_lengths).cpu().numpy()
    return lengths >= max_response_len


def react_action_complete(text: str) -> bool:
    """The agent "incomplete" check (spec 3.7): non-empty, with an ``<action>...</action>``
    block after the last ``</think>`` (anywhere when there is none). ``<think>`` is not required."""
    if not text:
        return False
    think_end = text.rfind("</think>")
    start = 0 if think_end < 0 else think_end + len("</think>")
    open_at = text.find("<action>", start)
    return open_at >= 0 and text.find("</action>", open_at) >= 0


def tool_answer_complete(text: str) -> bool:
    """The math "incomplete" check as the official code intends (spec 8.10): a response
    is complete if it calls a tool or gives a ``\\boxed{}`` answer."""
    return "<tool_call>" in text or "\\boxed{" in text


def is_incomplete(
    texts: Sequence[str], validator: Callable[[str], bool] = react_action_complete
) -> np.ndarray:
    """Rows whose decoded response fails the format ``validator`` (pluggable per environment)."""
    return np.fromiter((not validator(t) for t in texts), dtype=bool, count=len(texts))


def has_repeated_ngram(token_ids: Sequence[int] | np.ndarray, n: int = 20, threshold: int = 10) -> bool:
    """Some n-gram of token ids occurs >= threshold times."""
    ids = np.asarray(token_ids, dtype=np.int64)
    if len(ids) < n:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(ids, n)
    _, counts = np.unique(windows, axis=0, return_counts=True)
    return bool(counts.max() >= threshold)


def is_repetitive(
    responses: Sequence[Sequence[int]] | torch.Tensor,
    n: int = 20,
    threshold: int = 10,
    response_mask: torch.Tensor | None = None,
) -> np.ndarray:
    """Per row: a 20-gram of token ids repeated >= 10 times (spec 3.7).

    ``responses`` is a list of token-id lists, or a padded ``[N, T]`` tensor with its
    ``response_mask`` (only unmasked tokens are considered).
    """
    if n <= 0 or threshold <= 0:
        raise ValueError(f"n and threshold must be > 0, got n={n}, threshold={threshold}")
    if isinstance(responses, torch.Tensor):
        check_tensor("responses", responses, ndim=2)
        ids = responses.cpu().numpy()
        mask = (
            np.ones_like(ids, dtype=bool)
            if response_mask is None
            else response_mask.cpu().numpy().astype(bool)
        )
        rows: list[np.ndarray] = [ids[i][mask[i]] for i in range(len(ids))]
    else:
        rows = [np.asarray(r, dtype=np.int64) for r in responses]
    return np.fromiter((has_repeated_ngram(r, n, threshold) for r in rows), dtype=bool, count=len(rows))


def is_unreadable(texts: Sequence[str], markers: Sequence[str] = UNREADABLE_MARKERS) -> np.ndarray:
    """Rows whose decoded text holds a replacement character or mojibake marker (spec 3.7)."""
    return np.fromiter((any(m in t for m in markers) for t in texts), dtype=bool, count=len(texts))


def apply_response_filters(
    response_mask: torch.Tensor, flags: dict[str, Any], enabled: Sequence[str] = RESPONSE_FLAGS
) -> tuple[torch.Tensor, dict[str, float]]:
    """Zero the response mask of every row flagged by an enabled filter.

    Args:
        response_mask: ``[N, T]``.
        flags: name -> ``[N]`` bool, for names in ``RESPONSE_FLAGS``.
        enabled: the filters to apply (Dr.BoT: all four).

    Returns:
        the new mask and the fraction of rows each filter flagged (plus ``any``).
    """
    check_tensor("response_mask", response_mask, ndim=2)
    n = response_mask.shape[0]
    drop = np.zeros(n, dtype=bool)
    stats: dict[str, float] = {}
    for name in enabled:
        check_choice("filter", name, RESPONSE_FLAGS)
        if name not in flags:
            raise ValueError(f"flags has no entry for the enabled filter '{name}'")
        flag = np.asarray(flags[name], dtype=bool)
        if flag.shape != (n,):
            raise ValueError(f"flags['{name}'] has shape {flag.shape}, expected ({n},)")
        stats[name] = float(flag.mean())
        drop |= flag
    stats["any"] = float(drop.mean())
    keep = torch.from_numpy(~drop).to(response_mask.device).unsqueeze(-1)
    return response_mask * keep.to(response_mask.dtype), stats


def largest_power_of_two(n: int) -> int:
    """Largest power of two <= n, and 0 for n <= 1 (spec 3.3 reference sketch)."""
    return 0 if n <= 1 else 1 << (int(n).bit_length() - 1)


def group_reward_std(
    rewards: Sequence[float] | np.ndarray | torch.Tensor,
    group_ids: Sequence[Any] | np.ndarray,
    traj_ids: Sequence[Any] | np.ndarray | None = None,
    *,
    ddof: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group reward mean and std over trajectories (spec 3.3, 3.7).

    Each trajectory counts once with the mean of its rows' rewards (agent code);
    without ``traj_ids`` every row is a trajectory (math). ``ddof=0`` is ``np.std``
    (agent), ``ddof=1`` the unbiased ``torch.std`` (math).

    Returns:
        ``(codes [N], mean [G], std [G])``: dense group code of each row and the stats.
    """
    r = as_float_array("rewards", rewards)
    codes = as_ids("group_ids", group_ids, len(r))
    traj = np.arange(len(r)) if traj_ids is None else as_ids("traj_ids", traj_ids, len(r))
    traj_mean, traj_group = trajectory_rewards(r, codes, traj)
    mean, std = group_stats(traj_mean, traj_group, ddof=ddof)
    return codes, mean, std


def low_variance_group_filter(
    rewards: Sequence[float] | np.ndarray | torch.Tensor,
    group_ids: Sequence[Any] | np.ndarray,
    traj_ids: Sequence[Any] | np.ndarray | None = None,
    *,
    ratio: float = 0.75,
    kind: str = "std",
    ddof: int = 0,
    power_of_two_rows: bool = False,
    generator: np.random.Generator | None = None,
) -> np.ndarray:
    """Keep the ``floor(ratio * #groups)`` groups with the highest reward std (spec 3.7).

    ``kind="std_rev"`` keeps the lowest-std groups instead. ``ratio == 1`` keeps
    everything. ``power_of_two_rows`` (agent code) then keeps a random subset of the
    surviving rows of the largest power-of-two size. At least one group is kept.
    Ties in std are broken by first appearance.

    Returns:
        ``[N]`` bool mask of the rows to keep.
    """
    check_choice("kind", kind, GROUP_FILTER_KINDS)
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    codes, _, std = group_reward_std(rewards, group_ids, traj_ids, ddof=ddof)
    num_groups = len(std)
    keep_groups = max(1, int(ratio * num_groups))
    order = np.argsort(-std if kind == "std" else std, kind="stable")
    kept = np.zeros(num_groups, dtype=bool)
    kept[order[:keep_groups]] = True
    keep = kept[codes]
    if power_of_two_rows:
        rows = np.flatnonzero(keep)
        target = max(1, largest_power_of_two(len(rows)))
        rng = generator if generator is not None else np.random.default_rng()
        chosen = rng.choice(rows, size=target, replace=False)
        keep = np.zeros_like(keep)
        keep[chosen] = True
    return keep
