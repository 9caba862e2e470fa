"""Input validation shared by ``spear.algo``: bad input fails loudly, naming the argument."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    options = sorted(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_tensor(name: str, x: Any, *, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    return x


def check_same_shape(reference: str, ref: torch.Tensor, **others: torch.Tensor) -> None:
    for name, x in others.items():
        if x.shape != ref.shape:
            raise ValueError(
                f"{name} has shape {tuple(x.shape)} but {reference} has shape {tuple(ref.shape)}"
            )


def check_finite_where(name: str, x: torch.Tensor, valid: torch.Tensor) -> None:
    """Non-finite values are only an error where ``valid`` is set (padding may hold anything)."""
    if not bool(torch.isfinite(x[valid]).all()):
        raise ValueError(f"{name} contains NaN or inf at unmasked positions")


def as_float_array(name: str, x: Any, *, allow_empty: bool = False) -> np.ndarray:
    """A 1-D float64 copy of ``x`` (list, numpy array or tensor), checked for finiteness."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per row), got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_ids(name: str, ids: Sequence[Any] | np.ndarray | torch.Tensor, length: int) -> np.ndarray:
    """Group / trajectory identifiers as dense integer codes (any hashable ids work)."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    values = list(ids)
    if len(values) != length:
        raise ValueError(f"{name} has {len(values)} entries but there are {length} rows")
    codes: dict[Any, int] = {}
    return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int64, count=length)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
