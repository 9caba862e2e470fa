"""The SIL replay buffer (spec 3.2, 3.3): storage, baseline, recalibration, trigger, draws, state."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spear.algo.replay import ReplayBuffer, ReplayConfig, capacity_for_rows


def _rows(n, width=3, offset=0):
    return {
        "old_log_prob": torch.arange(offset, offset + n * width, dtype=torch.float32).view(n, width),
        "uid": [f"r{offset + i}" for i in range(n)],
    }


def _add(buf, rewards, advantages, step, groups=None, trajs=None, **kw):
    n = len(rewards)
    groups = groups if groups is not None else [f"g{step}"] * n
    return buf.add(
        _rows(n, offset=100 * step),
        rewards=rewards,
        advantages=advantages,
        group_ids=groups,
        traj_ids=trajs,
        step=step,
        **kw,
    )


def test_stores_only_positive_advantage_rows_with_their_log_probs():
    buf = ReplayBuffer(capacity=4)
    stored = _add(buf, [10.0, 0.0, 10.0, 0.0], [1.0, -1.0, 0.5, 0.0], step=1)
    assert stored == 2 and len(buf) == 2
    entry = buf.entries[0]
    assert entry.rows["uid"] == ["r100", "r102"]
    assert torch.equal(entry.rows["old_log_prob"], torch.tensor([[100.0, 101, 102], [106, 107, 108]]))
    assert entry.rewards.tolist() == [10.0, 10.0] and entry.step == 1


def test_rows_are_stored_by_their_advantage_and_the_eligible_mask():
    buf = ReplayBuffer()
    _add(buf, [1.0, 1.0, 1.0], [1.0, 0.0, 2.0], step=1, eligible=[True, True, False])
    assert buf.entries[0].rows["uid"] == ["r100"]  # row 1 has A = 0, row 2 is not eligible


def test_token_level_advantages_are_refused_with_what_to_pass_instead():
    with pytest.raises(ValueError, match="advantages must be 1-D"):
        _add(ReplayBuffer(), [1.0], torch.tensor([[1.0, 1.0, 0.0]]), step=1)


def test_baseline_statistics_by_hand():
    buf = ReplayBuffer()
    # group a: trajectory x (rows 10, 10) -> 10, trajectory y (0) -> 0: mean 5, population std 5
    # group b: trajectories 2 and 4: mean 3, std 1
    _add(
        buf,
        [10.0, 10.0, 0.0, 2.0, 4.0],
        [1, 1, -1, -1, 1],
        step=1,
        groups=["a", "a", "a", "b", "b"],
        trajs=["x", "x", "y", "u", "v"],
    )
    assert buf.baseline_means[0][1].tolist() == [5.0, 3.0]
    assert buf.baseline_stds[0][1].tolist() == [5.0, 1.0]
    assert buf.baseline() == (4.0, 3.0)  # medians of (5, 3) and (5, 1)


def test_percentile_recalibration_by_hand():
    buf = ReplayBuffer(capacity=8)
    # three groups with means 0, 5, 10 -> p50 baseline 5
    _add(buf, [0.0, 0.0, 5.0, 5.0, 10.0, 10.0], [0, 0, 0, 0, 0, 0], step=1, groups=[0, 0, 1, 1, 2, 2])
    _add(buf, [10.0, 4.0, 5.0], [3.0, 1.0, 2.0], step=2, groups=[9, 9, 9])
    # step 2 adds group 9 with mean 19/3: means (0, 5, 10, 6.33) -> p50 = 5.67
    b = float(np.percentile([0, 5, 10, 19 / 3], 50))
    batch = buf.sample()
    # recalibrated: 10 - b = 4.33 kept, 4 - b < 0 dropped, 5 - b < 0 dropped -> 1 row: pow2(1) = 0 -> no batch
    assert batch is None
    assert buf.baseline()[0] == pytest.approx(b)
    assert len(buf) == 0  # cleared anyway


def test_keep_rules_and_std_normalisation():
    def make(**kw):
        buf = ReplayBuffer(capacity=8, **kw)
        # step 1: group means (0, 5, 10), population stds (0, 1, 0)
        _add(buf, [0.0, 0.0, 6.0, 4.0, 10.0, 10.0], [0] * 6, step=1, groups=[0, 0, 1, 1, 2, 2])
        # step 2: group means (7.5, 6), stds (2.5, 1)
        _add(buf, [10.0, 5.0, 7.0, 5.0], [1.0] * 4, step=2, groups=[0, 0, 1, 1])
        return buf

    buf = make()
    # b = median(0, 5, 10, 7.5, 6) = 6; s = median(0, 1, 0, 2.5, 1) = 1
    assert buf.baseline() == (pytest.approx(6.0), pytest.approx(1.0))
    adv, keep, _ = buf.recalibrate(np.array([10.0, 5.0, 7.0, 6.0]), np.ones(4))
    assert adv.tolist() == pytest.approx([4.0, -1.0, 1.0, 0.0])
    assert keep.tolist() == [True, False, True, True]  # ">=" keeps A = 0 (agent code)
    strict = make(keep_rule=">")
    assert strict.recalibrate(np.array([10.0, 6.0]), np.ones(2))[1].tolist() == [True, False]  # math code
    normed = make(normalize_by_std=True)
    adv, _, _ = normed.recalibrate(np.array([10.0]), np.ones(1))
    assert adv.tolist() == pytest.approx([4.0 / (1.0 + 1e-6)])


def test_std_over_mixed_groups_keeps_the_normalised_advantage_finite_when_most_groups_are_uniform():
    def make(**kw):
        buf = ReplayBuffer(capacity=8, normalize_by_std=True, **kw)
        # five groups: three uniform (all fail alike: std 0), two mixed with stds 2 and 4
        _add(
            buf,
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 0.0, 8.0],
            [0.0] * 10,
            step=1,
            groups=[0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
        )
        return buf

    official = make()
    # means (0, 0, 0, 2, 4) -> b = 0; stds (0, 0, 0, 2, 4) -> s = 0 over all groups
    assert official.baseline() == (0.0, 0.0)
    adv, _, _ = official.recalibrate(np.array([8.0]), np.ones(1))
    assert adv.tolist() == pytest.approx([8.0 / 1e-6])  # 8e6: the official blow-up
    mixed = make(std_over="mixed")
    assert mixed.baseline() == (0.0, 3.0)  # the median of the mixed groups' stds (2, 4)
    adv, _, _ = mixed.recalibrate(np.array([8.0]), np.ones(1))
    assert adv.tolist() == pytest.approx([8.0 / (3.0 + 1e-6)])
    only_uniform = ReplayBuffer(capacity=8, std_over="mixed")
    _add(only_uniform, [1.0, 1.0], [0.0, 0.0], step=1)
    assert only_uniform.baseline() == (1.0, 0.0)
    with pytest.raises(ValueError, match="std_over"):
        ReplayConfig(std_over="some")


def test_capacity_trigger_is_strictly_more_than_one_and_a_half_capacity():
    buf = ReplayBuffer(capacity=2)  # fires at > 3 rows above the baseline
    _add(buf, [0.0, 0.0], [0.0, 0.0], step=1)  # baseline group mean 0
    _add(buf, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], step=2, groups=[5, 6, 7])
    # group means now (0, 1, 1, 1) -> p50 = 1: rows with reward 1 are NOT strictly above it
    assert buf.num_qualifying() == 0 and not buf.ready()
    _add(buf, [5.0, 5.0, 5.0], [1.0, 1.0, 1.0], step=3)
    assert buf.num_qualifying() == 3 and not buf.ready()
    _add(buf, [5.0], [1.0], step=4)
    assert buf.num_qualifying() == 4 and buf.ready()


@pytest.mark.parametrize(
    ("rows", "ratio", "capacity"),
    [
        (2048, 1.0, 2048),  # full-scale math: 128 prompts x 16, one row per trajectory (spec 7.2)
        (64, 0.5, 32),  # the small math script: 4 x 16 rows, N_D = 32
        (400, 0.5, 128),  # 0.5 x 400 = 200 -> 128, the largest power of two below it
        (256, 0.5, 128),
        (3, 0.5, 1),  # never below one row
        (0, 0.5, 1),
    ],
)
def test_capacity_for_rows_by_hand(rows, ratio, capacity):
    assert capacity_for_rows(rows, ratio) == capacity


def test_capacity_none_is_sized_by_the_first_batch_and_kept_in_the_state():
    buf = ReplayBuffer(capacity=None, capacity_ratio=0.5)
    assert not buf.ready() and buf.config.row_limit is None
    _add(buf, [0.0] * 5, [0.0] * 5, step=1, groups=list(range(5)))  # nothing stored, but sized
    assert buf.config.capacity == 2  # 0.5 x 5 = 2.5 -> 2
    _add(buf, [1.0] * 20, [1.0] * 20, step=2)  # a later, larger batch does not resize it
    assert buf.config.capacity == 2 and buf.ready()  # 20 rows above the p50 baseline 0 > 1.5 x 2
    twin = ReplayBuffer(capacity=None)
    twin.load_state_dict(buf.state_dict())
    assert twin.config.capacity == 2
    assert len(buf.sample()) == 2


def test_qualifying_rows_without_a_baseline_use_each_entry_mean():
    buf = ReplayBuffer()
    assert buf.num_qualifying() == 0
    # a restored state whose baseline buffer is empty: compare with the entry's own mean reward
    state = buf.state_dict()
    state["entries"] = [
        {"rows": {"x": [1, 2, 3]}, "rewards": [1.0, 2.0, 6.0], "advantages": [1.0] * 3, "step": 1}
    ]
    buf.load_state_dict(state)
    assert buf.baseline() is None
    assert buf.num_qualifying() == 1  # only 6 > mean 3


def test_min_samples_trigger():
    buf = ReplayBuffer(trigger="min_samples", min_samples=2)
    _add(buf, [0.0, 0.0], [0.0, 0.0], step=1)
    _add(buf, [3.0, 0.0], [1.0, -1.0], step=2)  # means (0, 1.5) -> b = 0.75: one row above
    assert buf.num_qualifying() == 1 and not buf.ready()
    _add(buf, [3.0, 0.0], [1.0, -1.0], step=3)  # means (0, 1.5, 1.5) -> b = 1.5: two rows above
    assert buf.num_qualifying() == 2 and buf.ready()


def test_draw_is_a_power_of_two_subset_capped_at_capacity_and_clears():
    buf = ReplayBuffer(capacity=4, seed=3)
    _add(buf, [0.0] * 4, [0.0] * 4, step=1)  # baseline 0
    _add(buf, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1.0] * 7, step=2)
    batch = buf.sample()
    assert batch.baseline[0] == pytest.approx(2.0)  # median of the group means (0, 4)
    assert len(batch) == 4  # 6 rows with R - 2 >= 0 -> min(pow2(6) = 4, capacity 4)
    assert batch.advantages.tolist() == pytest.approx((batch.rewards - 2.0).tolist())  # no std norm
    assert (batch.rewards >= 2.0).all()
    assert batch.rows["old_log_prob"].shape == (4, 3)
    assert set(batch.rows["uid"]) <= {f"r{200 + i}" for i in range(7)}
    assert len(set(batch.rows["uid"])) == 4  # without replacement
    assert (batch.steps == 2).all()
    assert len(buf) == 0 and buf.baseline_size > 0  # D cleared, B kept


def test_keep_mode_and_no_power_of_two():
    buf = ReplayBuffer(capacity=16, clear_after_use=False, power_of_two=False)
    _add(buf, [0.0], [0.0], step=1)
    _add(buf, [1.0, 2.0, 3.0], [1.0] * 3, step=2)
    assert len(buf.sample()) == 3
    assert len(buf) == 3  # kept for the next draw


def test_decay_mode_multiplies_stored_advantages_and_drops_nothing():
    buf = ReplayBuffer(recalibration="decay", decay=0.5, capacity=4)
    _add(buf, [10.0, -3.0], [2.0, 4.0], step=1)
    batch = buf.sample()
    assert sorted(batch.advantages.tolist()) == pytest.approx([1.0, 2.0])
    assert batch.baseline is None


def test_prioritized_sampling_follows_advantage_weights():
    buf = ReplayBuffer(capacity=1, sampling="prioritized", clear_after_use=False, power_of_two=False, seed=0)
    _add(buf, [0.0] * 5, [0.0] * 5, step=1, groups=[0, 1, 2, 3, 4])  # five group means of 0
    _add(buf, [1.0, 3.0], [1.0, 1.0], step=2)  # one more group (mean 2): the median stays 0
    draws = [buf.sample().rows["uid"][0] for _ in range(4000)]
    share = draws.count("r201") / len(draws)
    assert share == pytest.approx(0.75, abs=0.03)  # p = 3 / (1 + 3)
    alpha2 = ReplayBuffer(
        capacity=1, sampling="prioritized", clear_after_use=False, power_of_two=False, alpha=2.0, seed=0
    )
    _add(alpha2, [0.0] * 5, [0.0] * 5, step=1, groups=[0, 1, 2, 3, 4])
    _add(alpha2, [1.0, 3.0], [1.0, 1.0], step=2)
    draws = [alpha2.sample().rows["uid"][0] for _ in range(4000)]
    assert draws.count("r201") / len(draws) == pytest.approx(0.9, abs=0.03)  # 9 / (1 + 9)


def test_staleness_is_relative_to_the_newest_entry():
    buf = ReplayBuffer(tolerate_steps=2, capacity=1000)
    for step in (1, 2, 3, 4):
        _add(buf, [1.0], [1.0], step=step)
    # adding step 4 pruned relative to newest = 3: keeps 1..3 (|1 - 3| = 2), then appends 4
    assert [e.step for e in buf.entries] == [1, 2, 3, 4]
    _add(buf, [1.0], [-1.0], step=9)  # nothing stored at step 9; prune relative to 4
    assert [e.step for e in buf.entries] == [2, 3, 4]
    _add(buf, [1.0], [-1.0], step=10)
    assert [e.step for e in buf.entries] == [2, 3, 4]  # official: newest entry is still 4


def test_staleness_relative_to_the_current_step_and_hard_cap():
    buf = ReplayBuffer(tolerate_steps=2, stale_reference="current", capacity=1000)
    for step in (1, 2, 3):
        _add(buf, [1.0], [1.0], step=step)
    _add(buf, [1.0], [-1.0], step=9)
    assert buf.entries == []
    capped = ReplayBuffer(tolerate_steps=50, capacity=1000)  # min(50, 10) = 10
    for step in range(1, 14):
        _add(capped, [1.0], [1.0], step=step)
    assert capped.entries[0].step == 2  # |2 - 12| = 10 kept, step 1 dropped


def test_memory_stays_bounded_when_the_buffer_never_fires():
    buf = ReplayBuffer(capacity=4, max_rows=10, tolerate_steps=10)
    for step in range(1, 30):
        _add(buf, [1.0] * 3, [1.0] * 3, step=step)
        assert len(buf) <= 10
    steps = [e.step for e in buf.entries]
    assert steps[-1] == 29 and steps == sorted(steps)  # the oldest rows went first


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 12)), min_size=1, max_size=25),
    tolerate=st.integers(0, 12),
    base_cap=st.integers(1, 20),
)
def test_buffer_bounds_and_staleness(batches, tolerate, base_cap):
    buf = ReplayBuffer(capacity=4, baseline_capacity=base_cap, tolerate_steps=tolerate)
    step = 0
    rng = np.random.default_rng(0)
    window = min(tolerate, 10)
    for gap, n in batches:
        step += gap
        groups = rng.integers(0, 3, size=n)
        newest_before = buf.entries[-1].step if buf.entries else None
        _add(buf, rng.normal(size=n), rng.normal(size=n), step=step, groups=groups)
        older = [e for e in buf.entries if e.step != step]
        assert all(newest_before - e.step <= window for e in older)
        assert len(buf) <= buf.config.row_limit
        last_step_groups = len(buf.baseline_means[-1][1])
        assert buf.baseline_size <= base_cap + last_step_groups
        steps = [s for s, _ in buf.baseline_means]
        assert steps == sorted(steps)


def test_state_dict_round_trip_reproduces_draws():
    buf = ReplayBuffer(capacity=4, seed=11, clear_after_use=False)
    _add(buf, [0.0] * 3, [0.0] * 3, step=1)
    _add(buf, [1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5, step=2)
    state = buf.state_dict()
    twin = ReplayBuffer()
    twin.load_state_dict(state)
    assert twin.config == buf.config and len(twin) == len(buf) and twin.baseline() == buf.baseline()
    for _ in range(3):
        a, b = buf.sample(), twin.sample()
        assert a.rows["uid"] == b.rows["uid"]
        assert torch.equal(a.advantages, b.advantages)
    torch.save(state, "/dev/null")  # the state is plain tensors, arrays and builtins


def test_rows_of_different_widths_are_padded_on_draw():
    buf = ReplayBuffer(capacity=4, power_of_two=False)
    _add(buf, [0.0], [0.0], step=1)
    buf.add(
        {"ids": torch.ones(2, 3, dtype=torch.long)},
        rewards=[1.0, 1.0],
        advantages=[1.0, 1.0],
        group_ids=[0, 0],
        step=2,
        pad_values={"ids": -1},
    )
    buf.add(
        {"ids": torch.ones(1, 5, dtype=torch.long)}, rewards=[1.0], advantages=[1.0], group_ids=[0], step=3
    )
    batch = buf.sample()
    assert batch.rows["ids"].shape == (3, 5)
    assert batch.rows["ids"][0].tolist() == [1, 1, 1, -1, -1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: _add(b, [1.0, float("nan")], [1.0, 1.0], step=1), "rewards contains NaN"),
        (lambda b: b.add(_rows(2), rewards=[1.0], advantages=[1.0], group_ids=[0], step=1), "rewards has 1"),
        (
            lambda b: b.add({"a": [1, 2], "b": [1]}, rewards=[1.0], advantages=[1.0], group_ids=[0], step=1),
            "same number of rows",
        ),
        (lambda b: b.add({}, rewards=[], advantages=[], group_ids=[], step=1), "at least one field"),
        (lambda b: _add(b, [1.0], [1.0], step=1.5), "step must be an int"),
        (lambda b: _add(b, [1.0], [1.0], step=1, eligible=[True, False]), "eligible has shape"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(ReplayBuffer())


def test_older_step_and_bad_config_are_rejected():
    buf = ReplayBuffer()
    _add(buf, [1.0], [1.0], step=5)
    with pytest.raises(ValueError, match="older than the newest"):
        _add(buf, [1.0], [1.0], step=4)
    for kwargs, message in [
        ({"recalibration": "max"}, "recalibration must be one of"),
        ({"sampling": "topk"}, "sampling must be one of"),
        ({"capacity": 0}, "capacity must be >= 1"),
        ({"capacity": None, "capacity_ratio": 0.0}, "capacity_ratio must be > 0"),
        ({"percentile": 101}, "percentile must be in"),
        ({"decay": 0.0}, "decay must be in"),
        ({"max_rows": 2, "capacity": 4}, "max_rows must be >="),
    ]:
        with pytest.raises(ValueError, match=message):
            ReplayConfig(**kwargs)
    with pytest.raises(ValueError, match="baseline buffer is empty"):
        ReplayBuffer().recalibrate(np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="rows_per_step must be a non-negative integer"):
        capacity_for_rows(-1)
    with pytest.raises(ValueError, match="capacity ratio must be > 0"):
        capacity_for_rows(64, 0.0)


def test_store_threshold_switch():
    buf = ReplayBuffer(store_threshold=1.0)  # the README's documented threshold (spec 8.1)
    assert _add(buf, [10.0, 10.0, 10.0], [0.5, 1.0, 1.5], step=1) == 1
