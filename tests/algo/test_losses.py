"""Policy losses and aggregation (spec 3.5, 3.6) against hand-computed numbers."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spear.algo import losses
from spear.algo.losses import (
    PolicyLossConfig,
    aggregate,
    entropy_from_logits,
    kl_penalty,
    log_probs_from_logits,
    policy_loss,
    register_policy_loss,
)

LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# ---------------------------------------------------------------- aggregation
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", (1 + 2 + 4) / 3),
        ("seq-mean-token-sum", ((1 + 2) + 4) / 2),
        ("seq-mean-token-mean", ((1 + 2) / 2 + 4 / 1) / 2),
        ("seq-mean-token-sum-norm", (1 + 2 + 4) / 3),  # L = padded length 3
    ],
)
def test_aggregate_by_hand(mode, expected):
    assert aggregate(LOSS, MASK, mode).item() == pytest.approx(expected)


def test_sum_norm_uses_the_given_constant():
    assert aggregate(LOSS, MASK, "seq-mean-token-sum-norm", norm_length=10).item() == pytest.approx(0.7)


def test_seq_mean_token_mean_skips_fully_masked_rows():
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert aggregate(LOSS, mask, "seq-mean-token-mean").item() == pytest.approx(1.5)


def _loss_and_mask(draw_rows, draw_cols, data):
    rows = data.draw(draw_rows)
    cols = data.draw(draw_cols)
    values = data.draw(st.lists(st.floats(-100, 100), min_size=rows * cols, max_size=rows * cols))
    bits = data.draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols))
    loss = torch.tensor(values, dtype=torch.float64).view(rows, cols)
    mask = torch.tensor(bits, dtype=torch.float64).view(rows, cols)
    return loss, mask


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_masked_tokens_never_contribute(data):
    loss, mask = _loss_and_mask(st.integers(1, 5), st.integers(1, 7), data)
    if mask.sum() == 0:
        mask[0, 0] = 1
    poisoned = torch.where(mask.bool(), loss, torch.full_like(loss, float("nan")))
    for mode in losses.AGG_MODES:
        assert aggregate(poisoned, mask, mode).item() == pytest.approx(aggregate(loss, mask, mode).item())


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_aggregation_closed_forms(data):
    loss, mask = _loss_and_mask(st.integers(1, 5), st.integers(1, 7), data)
    mask[:, 0] = 1  # every row has a token
    rows, length = loss.shape
    token_sum = (loss * mask).sum()
    assert aggregate(loss, mask, "token-mean").item() == pytest.approx((token_sum / mask.sum()).item())
    assert aggregate(loss, mask, "seq-mean-token-sum").item() == pytest.approx((token_sum / rows).item())
    assert aggregate(loss, mask, "seq-mean-token-sum-norm").item() == pytest.approx(
        (token_sum / length).item()
    )
    per_row = [(loss[i] * mask[i]).sum() / mask[i].sum() for i in range(rows)]
    assert aggregate(loss, mask, "seq-mean-token-mean").item() == pytest.approx(float(sum(per_row) / rows))


# ---------------------------------------------------------------- vanilla PPO
def _vanilla_example():
    # one row of four tokens; log-ratios chosen so each token hits a different branch
    log_ratio = torch.tensor([[0.5, -0.5, 3.0, 0.0]])
    advantages = torch.tensor([[1.0, -1.0, -1.0, 2.0]])
    old = torch.full_like(log_ratio, -2.0)
    return old + log_ratio, old, advantages


def test_vanilla_clip_higher_and_dual_clip_by_hand():
    log_prob, old, adv = _vanilla_example()
    log_prob.requires_grad_(True)
    loss, metrics = policy_loss(
        "vanilla",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones_like(adv),
        clip_low=0.2,
        clip_high=0.28,
        clip_c=10.0,
    )
    # token 0: A=1, ratio e^0.5=1.649 > 1.28 -> clipped: max(-1.649, -1.28) = -1.28
    # token 1: A=-1, ratio e^-0.5=0.607 < 0.8 -> max(0.607, 0.8) = 0.8
    # token 2: A=-1, ratio e^3=20.09 -> max(20.09, 1.28) = 20.09, dual clip min(20.09, 10) = 10
    # token 3: A=2, ratio 1 -> -2
    expected = (-1.28 + 0.8 + 10.0 - 2.0) / 4
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics["ppo_clipfrac"] == pytest.approx(2 / 4)
    assert metrics["dual_clipfrac"] == pytest.approx(1 / 4)
    assert metrics["approx_kl"] == pytest.approx(-(0.5 - 0.5 + 3.0 + 0.0) / 4)
    loss.backward()
    # clipped tokens (0, 1) and the dual-clipped token (2) get no gradient; token 3: d/dlogp (-A r)/4 = -2/4
    assert log_prob.grad[0].tolist() == pytest.approx([0.0, 0.0, 0.0, -0.5])


def test_vanilla_log_ratio_clamp_keeps_loss_finite():
    log_prob = torch.tensor([[0.0]])
    old = torch.tensor([[-200.0]])
    loss, _ = policy_loss(
        "vanilla",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=torch.tensor([[-1.0]]),
        mask=torch.ones(1, 1),
        clip_c=None,
    )
    assert loss.item() == pytest.approx(math.exp(20.0))


# ---------------------------------------------------------------- Clip-Cov
def _cov_example():
    # ratio 1 everywhere, so PPO clips nothing. A = [2, 0, 0, -2], logp = [-1, -2, -3, -4]
    # centred: A - 0 = [2, 0, 0, -2]; logp + 2.5 = [1.5, 0.5, -0.5, -1.5] -> cov = [3, 0, 0, 3]
    log_prob = torch.tensor([[-1.0, -2.0, -3.0, -4.0]], requires_grad=True)
    old = log_prob.detach().clone()
    adv = torch.tensor([[2.0, 0.0, 0.0, -2.0]])
    return log_prob, old, adv


def test_clip_cov_zeroes_one_candidate_by_hand():
    log_prob, old, adv = _cov_example()
    loss, metrics = policy_loss(
        "clip_cov",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones_like(adv),
        agg_mode="seq-mean-token-sum",
        cov_ratio=0.25,
        cov_lb=1.0,
        cov_ub=5.0,
        generator=torch.Generator().manual_seed(0),
    )
    # per-token loss -A * 1 = [-2, 0, 0, 2]; exactly one of tokens 0 / 3 is zeroed
    assert loss.item() in (pytest.approx(2.0), pytest.approx(-2.0))
    assert metrics["cov_clipfrac"] == pytest.approx(0.25)
    assert metrics["ppo_clipfrac"] == 0.0
    loss.backward()
    grad = log_prob.grad[0]
    zeroed = [i for i in (0, 3) if grad[i] == 0]
    assert len(zeroed) == 1
    assert grad[1].item() == 0.0 and grad[2].item() == 0.0  # A = 0


def test_clip_cov_window_excludes_out_of_range_covariance():
    log_prob, old, adv = _cov_example()
    _, metrics = policy_loss(
        "clip_cov",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones_like(adv),
        cov_ratio=1.0,
        cov_lb=1.0,
        cov_ub=2.5,
    )
    assert metrics["cov_clipfrac"] == 0.0


def test_clip_cov_ratio_bounds_the_number_of_clipped_tokens():
    log_prob, old, adv = _cov_example()
    _, metrics = policy_loss(
        "clip_cov",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones_like(adv),
        cov_ratio=0.5,
        cov_lb=1.0,
        cov_ub=5.0,
    )
    assert metrics["cov_clipfrac"] == pytest.approx(0.5)  # both candidates, 2 = floor(0.5 * 4)


def test_clip_cov_skips_tokens_ppo_already_clipped():
    log_prob, old, adv = _cov_example()
    old = old.clone()
    old[0, 0] -= 1.0  # token 0: A > 0 and ratio e > 1.2 -> clipped by PPO, so not a candidate
    base, _ = losses.clip_cov_loss(
        log_prob.detach(),
        old,
        adv,
        torch.ones_like(adv, dtype=torch.bool),
        PolicyLossConfig(cov_ratio=1.0, cov_lb=-100, cov_ub=100),
    )
    assert base[0, 0].item() == pytest.approx(-2.0 * 1.2)  # kept: the clipped surrogate value


def test_clip_cov_generator_makes_the_draw_reproducible():
    torch.manual_seed(0)
    log_prob = torch.randn(8, 32)
    old = log_prob + 0.01 * torch.randn(8, 32)
    adv = torch.randn(8, 1).expand(8, 32).contiguous()
    kwargs = dict(
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones(8, 32),
        cov_ratio=0.1,
        cov_lb=-10.0,
        cov_ub=10.0,
    )
    a, _ = policy_loss("clip_cov", generator=torch.Generator().manual_seed(5), **kwargs)
    b, _ = policy_loss("clip_cov", generator=torch.Generator().manual_seed(5), **kwargs)
    assert a.item() == b.item()


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ratio=st.floats(0.01, 1.0),
    lb=st.floats(-2.0, 0.5),
    width=st.floats(0.1, 3.0),
)
def test_clip_cov_bounds_and_eligibility(seed, ratio, lb, width):
    gen = torch.Generator().manual_seed(seed)
    log_prob = torch.randn(4, 10, generator=gen)
    old = log_prob + 0.3 * torch.randn(4, 10, generator=gen)
    adv = torch.randn(4, 1, generator=gen).expand(4, 10).contiguous()
    valid = torch.rand(4, 10, generator=gen) > 0.3
    valid[0, 0] = True
    cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28, cov_ratio=ratio, cov_lb=lb, cov_ub=lb + width)
    loss_mat, _ = losses.clip_cov_loss(log_prob, old, adv, valid, cfg, gen)
    ratio_t = torch.exp(log_prob - old)
    unclipped, clipped = -adv * ratio_t, -adv * ratio_t.clamp(0.8, 1.28)
    full = torch.maximum(unclipped, clipped)
    zeroed = (loss_mat == 0) & (full != 0) & valid
    cov = losses.token_covariance(adv, log_prob, valid)
    eligible = valid & ~(clipped > unclipped) & (cov > lb) & (cov < lb + width)
    assert not bool((zeroed & ~eligible).any()), "only eligible tokens may be clipped"
    assert int(zeroed.sum()) <= max(1, int(ratio * int(valid.sum())))
    assert int(zeroed.sum()) == min(max(1, int(ratio * int(valid.sum()))), int(eligible.sum()))
    untouched = valid & ~zeroed
    assert torch.equal(loss_mat[untouched], full[untouched])


# ---------------------------------------------------------------- KL-Cov
def test_kl_cov_penalises_the_top_covariance_token_by_hand():
    log_prob = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    old = log_prob - 0.1
    adv = torch.tensor([[2.0, 0.0, 0.0, -1.0]])
    # A - mean(A) = [1.75, -0.25, -0.25, -1.25]; logp - mean = [1.5, 0.5, -0.5, -1.5]
    # cov = [2.625, -0.125, 0.125, 1.875] -> top-1 (k = max(1, floor(0.25 * 4))) is token 0
    loss, metrics = policy_loss(
        "kl_cov",
        log_prob=log_prob,
        old_log_prob=old,
        advantages=adv,
        mask=torch.ones_like(adv),
        agg_mode="seq-mean-token-sum",
        cov_ratio=0.25,
        kl_coef=0.5,
    )
    r = math.exp(0.1)
    expected = (-2.0 * r + 0.5 * 0.1) + 0.0 + 0.0 + (1.0 * r)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["cov_clipfrac"] == pytest.approx(0.25)


# ---------------------------------------------------------------- registry and bad input
def test_custom_loss_through_the_registry():
    name = "test_negated_ratio"
    if name not in losses.POLICY_LOSSES:

        @register_policy_loss(name)
        def _negated(log_prob, old_log_prob, advantages, valid, cfg, generator=None):
            return -advantages * torch.exp(log_prob - old_log_prob), {}

    loss, _ = policy_loss(
        name,
        log_prob=torch.zeros(1, 2),
        old_log_prob=torch.zeros(1, 2),
        advantages=torch.tensor([[1.0, 3.0]]),
        mask=torch.ones(1, 2),
    )
    assert loss.item() == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="already registered"):
        register_policy_loss("vanilla")(lambda *a: None)


def _ok_inputs():
    return dict(
        log_prob=torch.zeros(2, 3),
        old_log_prob=torch.zeros(2, 3),
        advantages=torch.ones(2, 3),
        mask=torch.ones(2, 3),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"old_log_prob": torch.zeros(2, 4)}, "old_log_prob has shape"),
        ({"advantages": torch.ones(3, 3)}, "advantages has shape"),
        ({"mask": torch.ones(2, 2)}, "mask has shape"),
        ({"log_prob": torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0]])}, "log_prob contains NaN"),
        ({"old_log_prob": torch.full((2, 3), float("-inf"))}, "old_log_prob contains NaN or inf"),
        ({"advantages": torch.full((2, 3), float("inf"))}, "advantages contains"),
        ({"mask": torch.zeros(2, 3)}, "no valid tokens"),
        ({"mask": torch.full((2, 3), 2.0)}, "only 0 and 1"),
        ({"log_prob": torch.zeros(0, 3)}, "log_prob is empty"),
    ],
)
def test_bad_input_names_the_argument(change, message):
    with pytest.raises(ValueError, match=message):
        policy_loss("vanilla", **{**_ok_inputs(), **change})


def test_nan_at_masked_positions_is_fine():
    inputs = _ok_inputs()
    inputs["old_log_prob"] = torch.tensor([[0.0, 0.0, float("nan")], [0.0, 0.0, 0.0]])
    inputs["mask"] = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    loss, _ = policy_loss("vanilla", **inputs)
    assert loss.item() == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "ppo2"}, "mode must be one of"),
        ({"agg_mode": "mean"}, "agg_mode must be one of"),
        ({"clip_low": 1.5}, "clip_low"),
        ({"clip_c": 0.5}, "clip_c"),
        ({"cov_lb": 5.0, "cov_ub": 1.0}, "cov_lb"),
        ({"cov_ratio": 0.0}, "cov_ratio"),
    ],
)
def test_bad_options_are_rejected(kwargs, message):
    mode = kwargs.pop("mode", "vanilla")
    with pytest.raises(ValueError, match=message):
        policy_loss(mode, **_ok_inputs(), **kwargs)


# ---------------------------------------------------------------- entropy, log-probs, KL
def test_entropy_by_hand():
    uniform = torch.zeros(1, 4)
    assert entropy_from_logits(uniform).item() == pytest.approx(math.log(4))
    logits = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.25)]])
    assert entropy_from_logits(logits).item() == pytest.approx(
        -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    )
    assert entropy_from_logits(torch.tensor([[100.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_log_probs_from_logits_by_hand():
    logits = torch.tensor([[[math.log(0.5), math.log(0.25), math.log(0.25)]]])
    assert log_probs_from_logits(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.25))


def test_kl_penalties_by_hand():
    logp, ref = torch.tensor([[-1.0]]), torch.tensor([[-2.0]])
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(1.0)
    # k3: log_ratio = ref - logp = -1 -> e^-1 + 1 - 1
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(math.exp(-1))
    assert kl_penalty(logp, ref, "abs").item() == pytest.approx(1.0)
    assert kl_penalty(logp, ref, "mse").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        kl_penalty(logp, ref, "k2")


@pytest.mark.parametrize(
    ("mode", "block_rows", "expected"), [("clip_cov", None, 1), ("clip_cov", 8, 2), ("kl_cov", 8, 2)]
)
def test_covariance_tokens_are_counted_per_block_of_rows(mode, block_rows, expected):
    """spec 10: the official count is max(1, floor(ratio x tokens)) per micro-batch of 8 rows.
    16 rows x 50 tokens at ratio 0.0002: one token per 8-row block (2), not one in all (1)."""
    torch.manual_seed(0)
    log_prob = torch.randn(16, 50) - 2.0
    _, metrics = policy_loss(
        mode,
        log_prob=log_prob,
        old_log_prob=log_prob.clone(),  # ratio 1: PPO clips nothing, every token is a candidate
        advantages=torch.randn(16, 50),
        mask=torch.ones(16, 50),
        cov_ratio=0.0002,
        cov_lb=-1e9,
        cov_ub=1e9,
        cov_block_rows=block_rows,
        generator=torch.Generator().manual_seed(0),
    )
    assert metrics["cov_clipfrac"] == pytest.approx(expected / (16 * 50))
