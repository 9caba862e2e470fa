"""GRPO and GiGPO advantages (spec 3.8, 3.9) against hand-computed numbers."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spear.algo.advantages import (
    ADVANTAGE_ESTIMATORS,
    discounted_returns,
    get_advantage,
    gigpo,
    grpo,
    to_token_level,
)


def test_grpo_std_normalised_by_hand():
    adv = grpo([1.0, 0.0, 1.0, 1.0, 5.0], ["a", "a", "a", "b", "c"])
    # group a: mean 2/3, unbiased std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3)
    std = math.sqrt(1 / 3)
    expected_a = [(1 - 2 / 3) / (std + 1e-6), (0 - 2 / 3) / (std + 1e-6), (1 - 2 / 3) / (std + 1e-6)]
    # singleton groups: mean 0, std 1 (verl) -> r / (1 + eps)
    expected = [*expected_a, 1 / (1 + 1e-6), 5 / (1 + 1e-6)]
    assert adv.tolist() == pytest.approx(expected, rel=1e-5)


def test_grpo_without_std_is_reward_minus_group_mean():
    adv = grpo([10.0, 0.0, 0.0, 0.0], [7, 7, 7, 7], normalize_by_std=False)
    assert adv.tolist() == pytest.approx([7.5, -2.5, -2.5, -2.5])


def test_grpo_rows_vs_trajectories():
    # trajectory A: 3 turns with reward 1; trajectory B: 1 turn with reward 0
    rewards, groups, trajs = [1.0, 1.0, 1.0, 0.0], ["g"] * 4, ["A", "A", "A", "B"]
    by_rows = grpo(rewards, groups, normalize_by_std=False, stats_over="rows")
    by_traj = grpo(rewards, groups, normalize_by_std=False, stats_over="trajectories", traj_ids=trajs)
    assert by_rows.tolist() == pytest.approx([0.25, 0.25, 0.25, -0.75])  # mean 3/4, turn-weighted
    assert by_traj.tolist() == pytest.approx([0.5, 0.5, 0.5, -0.5])  # mean of (1, 0)
    # std over trajectories: unbiased std of (1, 0) = sqrt(0.5)
    normed = grpo(rewards, groups, stats_over="trajectories", traj_ids=trajs)
    assert normed[0].item() == pytest.approx(0.5 / (math.sqrt(0.5) + 1e-6), rel=1e-5)


@settings(max_examples=50, deadline=None)
@given(
    rewards=st.lists(st.floats(-10, 10), min_size=2, max_size=24),
    seed=st.integers(0, 1000),
    std=st.booleans(),
)
def test_grpo_groups_by_id_not_position(rewards, seed, std):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, size=len(rewards))
    perm = rng.permutation(len(rewards))
    adv = grpo(rewards, groups, normalize_by_std=std)
    adv_perm = grpo(np.asarray(rewards)[perm], groups[perm], normalize_by_std=std)
    assert adv_perm.numpy() == pytest.approx(adv.numpy()[perm], abs=1e-4)


@settings(max_examples=50, deadline=None)
@given(rewards=st.lists(st.floats(-10, 10), min_size=2, max_size=16))
def test_grpo_advantages_sum_to_zero_within_a_group(rewards):
    adv = grpo(rewards, [0] * len(rewards), normalize_by_std=False)
    assert float(adv.sum()) == pytest.approx(0.0, abs=1e-3)


def test_discounted_returns_follow_turn_order_not_row_order():
    # rows listed out of order: trajectory t1 turns 1, 0, 2 with rewards 0, 0, 10
    returns = discounted_returns([0.0, 0.0, 10.0, 4.0], ["t1", "t1", "t1", "t2"], [1, 0, 2, 0], gamma=0.5)
    assert returns.tolist() == pytest.approx([5.0, 2.5, 10.0, 4.0])


def test_gigpo_by_hand():
    # one group, two trajectories. t1: obs s0 -> s1, step rewards 0, 10 (won, episode reward 10)
    # t2: obs s0 -> s2 -> s3, step rewards 0, 0, 0 (episode reward 0)
    rewards = [10.0, 10.0, 0.0, 0.0, 0.0]
    returns = discounted_returns(
        [0.0, 10.0, 0.0, 0.0, 0.0], ["t1", "t1", "t2", "t2", "t2"], [0, 1, 0, 1, 2], gamma=0.5
    )
    adv = gigpo(
        rewards,
        ["g"] * 5,
        anchor_obs=["s0", "s1", "s0", "s2", "s3"],
        step_returns=returns,
        step_weight=1.0,
        mode="mean_norm",
    )
    # episode: row mean 20/5 = 4 -> [6, 6, -4, -4, -4]
    # returns: t1 [0 + 0.5*10, 10] = [5, 10]; t2 [0, 0, 0]
    # step group s0 = {5, 0}: mean 2.5 -> +2.5 / -2.5; singletons -> 0
    assert adv.tolist() == pytest.approx([8.5, 6.0, -6.5, -4.0, -4.0])


def test_gigpo_std_mode_and_weight_and_penalty():
    kwargs = dict(anchor_obs=["s0", "s0"], step_returns=[10.0, 0.0])
    adv = gigpo([10.0, 0.0], ["g", "g"], mode="mean_std_norm", step_weight=0.5, **kwargs)
    # episode: mean 5, unbiased std sqrt(50) -> +-5/sqrt(50); step: same numbers
    e = 5 / (math.sqrt(50) + 1e-6)
    assert adv.tolist() == pytest.approx([e + 0.5 * e, -e - 0.5 * e], rel=1e-5)
    penalised = gigpo([10.0, 0.0], ["g", "g"], mode="mean_norm", step_penalty=[0.0, 0.1], **kwargs)
    # returns 10 and -0.1 -> mean 4.95 -> step +5.05 / -5.05; episode +5 / -5
    assert penalised.tolist() == pytest.approx([10.05, -10.05])


def test_anchor_groups_do_not_cross_task_groups():
    adv = gigpo(
        [1.0, 0.0], ["g1", "g2"], anchor_obs=["same", "same"], step_returns=[1.0, 0.0], mode="mean_norm"
    )
    # each is alone in its group: episode term r (mean 0 for singletons), step term 0
    assert adv.tolist() == pytest.approx([1.0, 0.0])


def test_to_token_level_masks():
    out = to_token_level(torch.tensor([2.0, -1.0]), torch.tensor([[1, 1, 0], [0, 1, 1]]))
    assert out.tolist() == [[2.0, 2.0, 0.0], [0.0, -1.0, -1.0]]


def test_registry_and_bad_input():
    assert {"grpo", "gigpo"} <= set(ADVANTAGE_ESTIMATORS)
    assert get_advantage("grpo") is grpo
    with pytest.raises(ValueError, match="estimator must be one of"):
        get_advantage("ppo")
    with pytest.raises(ValueError, match="rewards contains NaN"):
        grpo([1.0, float("nan")], [0, 0])
    with pytest.raises(ValueError, match="group_ids has 1 entries but there are 2 rows"):
        grpo([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="rewards is empty"):
        grpo([], [])
    with pytest.raises(ValueError, match="traj_ids is required"):
        grpo([1.0], [0], stats_over="trajectories")
    with pytest.raises(ValueError, match="stats_over must be one of"):
        grpo([1.0], [0], stats_over="steps")
    with pytest.raises(ValueError, match="mode must be one of"):
        gigpo([1.0], [0], anchor_obs=["s"], step_returns=[1.0], mode="std")
    with pytest.raises(ValueError, match="anchor_obs has 2 entries"):
        gigpo([1.0], [0], anchor_obs=["s", "t"], step_returns=[1.0])
    with pytest.raises(ValueError, match="step_returns has 2 entries"):
        gigpo([1.0], [0], anchor_obs=["s"], step_returns=[1.0, 2.0])
