"""Policy losses, loss aggregation, entropy and KL penalties (spec 3.5, 3.6, 3.10).

Shapes: every per-token tensor is ``[batch, response_length]``; ``mask`` is the
response mask (1 on tokens that count, 0 on padding / tool output / filtered rows).

Loss modes live in a registry, so users add their own without forking::

    @register_policy_loss("my_loss")
    def my_loss(log_prob, old_log_prob, advantages, mask, cfg, generator):
        ...
        return per_token_loss, metrics

and select it with ``policy_loss("my_loss", ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from spear.algo._checks import check_choice, check_finite_where, check_same_shape, check_tensor

AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def _validate_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    check_tensor("mask", mask, ndim=2)
    check_same_shape("loss_mat", like, mask=mask)
    valid = mask.bool()
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must contain only 0 and 1")
    if not bool(valid.any()):
        raise ValueError("mask has no valid tokens: every row is masked out")
    return valid


def aggregate(
    loss_mat: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    *,
    norm_length: float | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss ``[B, T]`` to a scalar (spec 3.6).

    * ``token-mean``: sum(l*M) / sum(M)
    * ``seq-mean-token-sum``: mean_i sum_t l*M
    * ``seq-mean-token-mean``: mean over rows with >= 1 valid token of (sum_t l*M / sum_t M);
      fully masked rows (Dr.BoT filters) are left out instead of producing 0/0.
    * ``seq-mean-token-sum-norm`` (Dr.GRPO / Dr.BoT): sum(l*M) / L, with the constant
      ``L = norm_length`` or, by default, the padded length ``T``.
    """
    check_tensor("loss_mat", loss_mat, ndim=2)
    check_choice("agg_mode", mode, AGG_MODES)
    valid = _validate_mask(mask, loss_mat)
    m = valid.to(loss_mat.dtype)
    # where() rather than multiplication, so inf/NaN in padding cannot leak into the sum.
    masked = torch.where(valid, loss_mat, torch.zeros((), dtype=loss_mat.dtype, device=loss_mat.device))
    if mode == "token-mean":
        return masked.sum() / m.sum()
    if mode == "seq-mean-token-sum":
        return masked.sum(dim=-1).mean()
    if mode == "seq-mean-token-mean":
        counts = m.sum(dim=-1)
        has_tokens = counts > 0
        per_row = masked.sum(dim=-1)[has_tokens] / counts[has_tokens]
        return per_row.mean()
    length = float(loss_mat.shape[-1]) if norm_length is None else float(norm_length)
    if not length > 0:
        raise ValueError(f"norm_length must be > 0, got {norm_length}")
    return masked.sum() / length


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over positions where the boolean ``valid`` is set."""
    return torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum() / valid.sum().clamp(
        min=1
    )


@dataclass(frozen=True)
class PolicyLossConfig:
    """Knobs of the policy-loss modes (spec 3.5, 3.7; defaults = verl yaml).

    Attributes:
        clip_low / clip_high: PPO clip range (1 - clip_low, 1 + clip_high); clip-higher
            is clip_high > clip_low (Dr.BoT: 0.2 / 0.28).
        clip_c: dual-clip constant for negative advantages (vanilla only; None disables).
        cov_ratio / cov_lb / cov_ub: Clip-Cov token fraction and covariance window;
            ``cov_ratio`` is also KL-Cov's top-k fraction.
        kl_coef: KL-Cov penalty coefficient (``ppo_kl_coef``).
        cov_block_rows: Clip-Cov / KL-Cov pick their tokens within blocks of this many
            consecutive rows, each with its own covariance means and its own count
            ``max(1, floor(cov_ratio * valid tokens))``: the official code computes the loss
            per micro-batch of ``ppo_micro_batch_size_per_gpu`` rows (8 in the agent scripts),
            so at ratio 0.0002 it clips one token per 8 rows. None: the whole tensor is one
            block (the count then depends on how many rows the caller passes).
    """

    clip_low: float = 0.2
    clip_high: float = 0.2
    clip_c: float | None = 3.0
    cov_ratio: float = 0.0002
    cov_lb: float = 1.0
    cov_ub: float = 5.0
    kl_coef: float = 0.1
    cov_block_rows: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.clip_low < 1:
            raise ValueError(f"clip_low must be in [0, 1), got {self.clip_low}")
        if not self.clip_high >= 0:
            raise ValueError(f"clip_high must be >= 0, got {self.clip_high}")
        if self.clip_c is not None and not self.clip_c > 1:
            raise ValueError(f"clip_c (dual clip) must be > 1 or None, got {self.clip_c}")
        if not 0 < self.cov_ratio <= 1:
            raise ValueError(f"cov_ratio must be in (0, 1], got {self.cov_ratio}")
        if not self.cov_lb < self.cov_ub:
            raise ValueError(f"cov_lb must be < cov_ub, got {self.cov_lb} >= {self.cov_ub}")
        if not self.kl_coef >= 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.cov_block_rows is not None and not (
            isinstance(self.cov_block_rows, int) and self.cov_block_rows >= 1
        ):
            raise ValueError(
                f"cov_block_rows must be a positive integer or None, got {self.cov_block_rows!r}"
            )


LossFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, PolicyLossConfig, "torch.Generator | None"],
    "tuple[torch.Tensor, dict[str, torch.Tensor]]",
]
POLICY_LOSSES: dict[str, LossFn] = {}


def register_policy_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Register a per-token policy loss ``fn(log_prob, old_log_prob, advantages, valid, cfg, generator)``.

    It returns ``(loss_mat [B, T], metrics)``; ``valid`` is the boolean mask.
    """

    def decorator(fn: LossFn) -> LossFn:
        if name in POLICY_LOSSES:
            raise ValueError(f"policy loss '{name}' is already registered")
        POLICY_LOSSES[name] = fn
        return fn

    return decorator


def _surrogates(
    ratio: torch.Tensor, advantages: torch.Tensor, cfg: PolicyLossConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    return unclipped, clipped


@register_policy_loss("vanilla")
def vanilla_loss(log_prob, old_log_prob, advantages, valid, cfg, generator=None):
    """PPO clip with clip-higher and dual clip for A < 0 (spec 3.5 "Vanilla PPO").

    The log-ratio is clamped to [-20, 20] so a stale behaviour log-prob cannot overflow exp().
    """
    log_ratio = torch.clamp(log_prob - old_log_prob, -20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped, clipped = _surrogates(ratio, advantages, cfg)
    loss = torch.maximum(unclipped, clipped)
    metrics = {"ppo_clipfrac": masked_mean((clipped > unclipped).float(), valid)}
    if cfg.clip_c is not None:
        dual = -advantages * cfg.clip_c
        negative = advantages < 0
        metrics["dual_clipfrac"] = masked_mean(((loss > dual) & negative).float(), valid)
        loss = torch.where(negative, torch.minimum(loss, dual), loss)
    metrics["approx_kl"] = masked_mean(-log_ratio, valid)
    return loss, metrics


def token_covariance(advantages: torch.Tensor, log_prob: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """cov_t = (A_t - mean(A)) * (logp_t - mean(logp)), means over valid tokens (spec 3.5)."""
    logp = log_prob.detach()
    return (advantages - masked_mean(advantages, valid)) * (logp - masked_mean(logp, valid))


def _row_blocks(rows: int, cfg: PolicyLossConfig) -> list[slice]:
    """The row blocks Clip-Cov / KL-Cov choose tokens in (``cfg.cov_block_rows``)."""
    size = cfg.cov_block_rows or max(rows, 1)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


@register_policy_loss("clip_cov")
def clip_cov_loss(log_prob, old_log_prob, advantages, valid, cfg, generator=None):
    """Clip-Cov (spec 3.5): no gradient for a random subset of high-covariance tokens.

    Within each row block (``cfg.cov_block_rows``), candidates are valid tokens that PPO did
    not already clip with ``cov_lb < cov < cov_ub`` (the covariance centred on the block's
    means); ``min(max(1, floor(cov_ratio * #valid)), #candidates)`` of them are drawn
    uniformly (``generator`` makes the draw reproducible). No log-ratio clamp and no dual
    clip here.
    """
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    unclipped, clipped = _surrogates(ratio, advantages, cfg)
    clipped_by_ppo = (clipped > unclipped) & valid
    keep = torch.ones_like(log_prob)
    for rows in _row_blocks(log_prob.shape[0], cfg):
        block_valid = valid[rows]
        if not bool(block_valid.any()):
            continue
        cov = token_covariance(advantages[rows], log_prob[rows], block_valid)
        candidates = block_valid & ~clipped_by_ppo[rows] & (cov > cfg.cov_lb) & (cov < cfg.cov_ub)
        candidate_idx = candidates.flatten().nonzero().squeeze(-1)
        if candidate_idx.numel() == 0:
            continue
        num_clip = max(1, int(cfg.cov_ratio * int(block_valid.sum())))
        perm = torch.randperm(candidate_idx.numel(), generator=generator, device="cpu").to(
            candidate_idx.device
        )
        block_keep = keep[rows].flatten()  # a copy: written back below
        block_keep[candidate_idx[perm[:num_clip]]] = 0.0
        keep[rows] = block_keep.view_as(block_valid)
    loss = torch.maximum(unclipped, clipped) * keep
    metrics = {
        "ppo_clipfrac": masked_mean(clipped_by_ppo.float(), valid),
        "cov_clipfrac": masked_mean((keep == 0).float(), valid),
        "approx_kl": masked_mean(-log_ratio, valid),
    }
    return loss, metrics


@register_policy_loss("kl_cov")
def kl_cov_loss(log_prob, old_log_prob, advantages, valid, cfg, generator=None):
    """KL-Cov (spec 3.5): unclipped surrogate; within each row block (``cfg.cov_block_rows``)
    the top-k covariance tokens also pay ``kl_coef * |logp - logp_old|``, with
    ``k = max(1, floor(cov_ratio * #valid))``."""
    log_ratio = log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    loss = -advantages * ratio
    penalised = torch.zeros_like(valid)
    for rows in _row_blocks(log_prob.shape[0], cfg):
        block_valid = valid[rows]
        if not bool(block_valid.any()):
            continue
        cov = token_covariance(advantages[rows], log_prob[rows], block_valid).flatten()
        valid_idx = block_valid.flatten().nonzero().squeeze(-1)
        k = max(1, int(cfg.cov_ratio * valid_idx.numel()))
        block = torch.zeros(block_valid.numel(), dtype=torch.bool, device=valid.device)
        block[valid_idx[torch.topk(cov[valid_idx], k).indices]] = True
        penalised[rows] = block.view_as(block_valid)
    loss = torch.where(penalised, loss + cfg.kl_coef * log_ratio.abs(), loss)
    metrics = {
        "ppo_clipfrac": torch.zeros((), device=log_prob.device),
        "cov_clipfrac": masked_mean(penalised.float(), valid),
        "approx_kl": masked_mean(-log_ratio, valid),
    }
    return loss, metrics


def policy_loss(
    mode: str,
    *,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    agg_mode: str = "token-mean",
    clip_low: float = 0.2,
    clip_high: float | None = None,
    clip_c: float | None = 3.0,
    cov_ratio: float = 0.0002,
    cov_lb: float = 1.0,
    cov_ub: float = 5.0,
    kl_coef: float = 0.1,
    cov_block_rows: int | None = None,
    norm_length: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Policy-gradient loss of ``mode`` aggregated with ``agg_mode`` (spec 3.4-3.6).

    Args:
        log_prob: current policy log-probs ``[B, T]`` (carries the gradient).
        old_log_prob: behaviour log-probs ``[B, T]`` (on-policy: the rollout policy;
            SIL: the stored log-probs from collection time).
        advantages: per-token advantages ``[B, T]``.
        mask: response mask ``[B, T]`` of 0/1.
        clip_high: defaults to ``clip_low`` (symmetric PPO).
        cov_block_rows: rows per block in which Clip-Cov / KL-Cov choose their tokens
            (:class:`PolicyLossConfig`); None: all ``B`` rows are one block.

    Returns:
        ``(loss, metrics)``: a scalar loss and floats ``ppo_clipfrac``, ``cov_clipfrac``
        (``clip_cov`` / ``kl_cov``), ``approx_kl`` (k1 estimate of KL(old || new)),
        ``dual_clipfrac`` (vanilla with dual clip).
    """
    check_choice("mode", mode, POLICY_LOSSES)
    check_tensor("log_prob", log_prob, ndim=2)
    for name, x in (("old_log_prob", old_log_prob), ("advantages", advantages)):
        check_tensor(name, x, ndim=2)
    check_same_shape("log_prob", log_prob, old_log_prob=old_log_prob, advantages=advantages)
    valid = _validate_mask(mask, log_prob)
    check_finite_where("log_prob", log_prob.detach(), valid)
    check_finite_where("old_log_prob", old_log_prob, valid)
    check_finite_where("advantages", advantages, valid)
    cfg = PolicyLossConfig(
        clip_low=clip_low,
        clip_high=clip_low if clip_high is None else clip_high,
        clip_c=clip_c,
        cov_ratio=cov_ratio,
        cov_lb=cov_lb,
        cov_ub=cov_ub,
        kl_coef=kl_coef,
        cov_block_rows=cov_block_rows,
    )
    loss_mat, metrics = POLICY_LOSSES[mode](
        log_prob, old_log_prob.detach(), advantages.detach(), valid, cfg, generator
    )
    loss = aggregate(loss_mat, mask, agg_mode, norm_length=norm_length)
    return loss, {k: float(v.detach()) for k, v in metrics.items()}


def log_probs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log pi(label) from ``logits [B, T, V]`` and ``labels [B, T]`` -> ``[B, T]``."""
    check_tensor("logits", logits, ndim=3)
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {tuple(logits.shape[:2])}")
    logits = logits.float()
    picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Token entropy H = logsumexp(z) - sum softmax(z) z, ``[..., V] -> [...]``."""
    check_tensor("logits", logits)
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


KL_PENALTIES = ("k1", "k3", "abs", "mse")


def kl_penalty(log_prob: torch.Tensor, ref_log_prob: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token KL estimate to a reference policy, ``[B, T] -> [B, T]``.

    * ``k1``: logp - logp_ref
    * ``k3`` (low variance, Schulman's estimator): exp(ref - logp) - (ref - logp) - 1,
      with the log-ratio clamped to [-20, 20] and the result to [-10, 10] for stability.
    * ``abs``: |logp - logp_ref|;  ``mse``: 0.5 (logp - logp_ref)^2
    """
    check_choice("kind", kind, KL_PENALTIES)
    check_tensor("log_prob", log_prob)
    check_same_shape("log_prob", log_prob, ref_log_prob=ref_log_prob)
    diff = log_prob - ref_log_prob
    if kind == "k1":
        return diff
    if kind == "abs":
        return diff.abs()
    if kind == "mse":
        return 0.5 * diff.square()
    log_ratio = torch.clamp(ref_log_prob - log_prob, -20.0, 20.0)
    return torch.clamp(torch.exp(log_ratio) - log_ratio - 1.0, -10.0, 10.0)
