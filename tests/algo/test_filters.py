"""Dr.BoT response filters and the low-variance group filter (spec 3.7)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spear.algo.filters import (
    apply_response_filters,
    group_reward_std,
    is_incomplete,
    is_overlong,
    is_repetitive,
    is_unreadable,
    largest_power_of_two,
    low_variance_group_filter,
    tool_answer_complete,
)


def test_overlong():
    assert is_overlong([10, 511, 512, 600], 512).tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="max_response_len"):
        is_overlong([1], 0)


def test_incomplete_follows_the_agent_rule():
    texts = [
        "<think>go</think><action>open fridge 1</action>",  # complete
        "<action>look</action>",  # no think needed
        "<think>a</think>no action here",  # missing action
        "<action>look</action><think>thinking again</think>",  # action only before the last </think>
        "",
        "<think>x</think><action>unterminated",
    ]
    assert is_incomplete(texts).tolist() == [False, False, True, True, True, True]
    assert is_incomplete(["anything"], validator=lambda t: "boxed" in t).tolist() == [True]


def test_math_validator_flags_answers_without_box_or_tool_call():
    texts = ["the answer is \\boxed{42}", "<tool_call>{}</tool_call>", "it is 42"]
    assert is_incomplete(texts, validator=tool_answer_complete).tolist() == [False, False, True]


def test_repetitive_threshold_is_inclusive():
    gram = list(range(20))
    assert is_repetitive([gram * 10]).tolist() == [True]
    assert is_repetitive([gram * 9 + [99] * 5]).tolist() == [False]
    assert is_repetitive([[7] * 29]).tolist() == [True]  # the 20-gram (7,...,7) occurs 10 times
    assert is_repetitive([[7] * 28]).tolist() == [False]  # ... 9 times


def test_repetitive_on_padded_tensors_ignores_masked_tokens():
    ids = torch.tensor([[5] * 29 + [0] * 3, [5] * 29 + [0] * 3])
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    assert is_repetitive(ids, response_mask=mask).tolist() == [True, False]


def test_unreadable():
    assert is_unreadable(["fine text", "bad \ufffd char", "ï¿½ mojibake", "ï¼Ÿ"]).tolist() == [
        False,
        True,
        True,
        True,
    ]


def test_apply_response_filters_zeroes_flagged_rows_only():
    mask = torch.ones(4, 3)
    flags = {
        "overlong": [True, False, False, False],
        "incomplete": [False, False, True, False],
        "repetitive": [False] * 4,
        "unreadable": [False] * 4,
    }
    new_mask, stats = apply_response_filters(mask, flags)
    assert new_mask.tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]]
    assert stats == {"overlong": 0.25, "incomplete": 0.25, "repetitive": 0.0, "unreadable": 0.0, "any": 0.5}
    only_repetitive, _ = apply_response_filters(mask, flags, enabled=["repetitive"])
    assert torch.equal(only_repetitive, mask)
    with pytest.raises(ValueError, match="filter must be one of"):
        apply_response_filters(mask, flags, enabled=["toxic"])
    with pytest.raises(ValueError, match="no entry for the enabled filter"):
        apply_response_filters(mask, {}, enabled=["overlong"])


def test_largest_power_of_two():
    assert [largest_power_of_two(n) for n in (0, 1, 2, 3, 4, 5, 1023, 1024, 1025)] == [
        0,
        0,
        2,
        2,
        4,
        4,
        512,
        1024,
        1024,
    ]


def test_group_std_over_trajectories_by_hand():
    # group a: trajectory x rows (10, 10) -> 10; trajectory y row (0) -> 0: mean 5, np.std 5
    # group b: two identical trajectories -> std 0
    _, mean, std = group_reward_std([10, 10, 0, 3, 3], ["a", "a", "a", "b", "b"], ["x", "x", "y", "u", "v"])
    assert mean.tolist() == pytest.approx([5.0, 3.0])
    assert std.tolist() == pytest.approx([5.0, 0.0])
    _, _, unbiased = group_reward_std([10, 0], ["a", "a"], ddof=1)
    assert unbiased.tolist() == pytest.approx([np.sqrt(50)])


def test_low_variance_filter_keeps_the_most_varied_groups():
    # group stds: g0 = 0, g1 = 5, g2 = 1, g3 = 2.5
    rewards = [1, 1, 0, 10, 0, 2, 0, 5]
    groups = [0, 0, 1, 1, 2, 2, 3, 3]
    keep = low_variance_group_filter(rewards, groups, ratio=0.75)  # floor(0.75 * 4) = 3 groups
    assert keep.tolist() == [False, False, True, True, True, True, True, True]
    rev = low_variance_group_filter(rewards, groups, ratio=0.5, kind="std_rev")
    assert rev.tolist() == [True, True, False, False, True, True, False, False]  # g0 (0) and g2 (1)
    assert low_variance_group_filter(rewards, groups, ratio=1.0).all()


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    ratio=st.floats(0.05, 1.0),
    seed=st.integers(0, 999),
    pow2=st.booleans(),
)
def test_group_filter_counts(sizes, ratio, seed, pow2):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    rewards = rng.normal(size=len(groups)).round(1)
    keep = low_variance_group_filter(rewards, groups, ratio=ratio, power_of_two_rows=pow2, generator=rng)
    kept_groups = set(groups[keep].tolist())
    expected_groups = max(1, int(ratio * len(sizes)))
    if not pow2:
        assert len(kept_groups) == expected_groups
        assert all(keep[groups == g].all() for g in kept_groups)  # whole groups
    else:
        n = int(keep.sum())
        assert n & (n - 1) == 0  # a power of two
        full = low_variance_group_filter(rewards, groups, ratio=ratio)
        assert not (keep & ~full).any()  # a subset of the group-filter survivors
        assert n == max(1, largest_power_of_two(int(full.sum())))


def test_group_filter_bad_input():
    with pytest.raises(ValueError, match="ratio must be in"):
        low_variance_group_filter([1.0], [0], ratio=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        low_variance_group_filter([1.0], [0], kind="var")
    with pytest.raises(ValueError, match="rewards contains NaN"):
        low_variance_group_filter([float("nan")], [0])
