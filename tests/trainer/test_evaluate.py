"""Held-out evaluation statistics, against values worked out by hand: Wilson intervals and the
gain of a run paired by episode (exact McNemar test)."""

import pytest

from spear.trainer.evaluate import (
    load_outcomes,
    mcnemar_p,
    paired_gain,
    run_paired_gain,
    save_outcomes,
    summarize,
    wilson_interval,
)


def outcomes(won, failed=None):
    n = len(won)
    return {
        "won": [bool(w) for w in won],
        "score": [float(w) for w in won],
        "turns": [3] * n,
        "tool_calls": [1] * n,
        "failed": failed or [False] * n,
    }


def test_wilson_interval_of_half_of_a_hundred():
    # p = 0.5, n = 100, z = 1.96: centre 0.5, half-width 1.96 * sqrt(0.0025 + 0.000096) / 1.0384 = 0.0962
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_holds_its_proportion_at_0_and_100_percent():
    # at p = 1 the upper bound is (1 + z^2/2n + z^2/2n) / (1 + z^2/n) = 1 exactly; in floats it
    # came out 0.9999999999999999 for 512 of 512, an interval that left out its own estimate
    assert wilson_interval(512, 512)[1] == 1.0 and wilson_interval(0, 512)[0] == 0.0
    low = wilson_interval(512, 512)[0]
    assert low == pytest.approx(1 / (1 + 1.959964**2 / 512), abs=1e-12) and low < 1.0


def test_mcnemar_exact_p_values():
    # 1 vs 5 discordant pairs: 2 * (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    assert mcnemar_p(1, 5) == pytest.approx(14 / 64)
    assert mcnemar_p(5, 1) == pytest.approx(14 / 64)  # two-sided: symmetric
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_p(3, 3) == 1.0  # capped
    assert mcnemar_p(0, 0) == 1.0  # no discordant pair: no evidence of change


def test_paired_gain_counts_only_discordant_episodes():
    # 8 episodes: won only after 1-5, only before 0, both 7, neither 6
    before = outcomes([1, 0, 0, 0, 0, 0, 0, 1])
    after = outcomes([0, 1, 1, 1, 1, 1, 0, 1])
    gain = paired_gain(before, after)
    assert (gain.won_after_only, gain.won_before_only, gain.episodes) == (5, 1, 8)
    # (5 - 1) / 8 = 0.5; variance ((5 + 1) - 16 / 8) / 64 = 1/16 -> half-width 1.96 * 0.25
    assert gain.gain == pytest.approx(0.5)
    assert gain.ci[0] == pytest.approx(0.5 - 1.959964 * 0.25) and gain.ci[1] == pytest.approx(
        0.5 + 1.959964 * 0.25
    )
    assert gain.p_value == pytest.approx(14 / 64)
    # the same as the difference of the two success rates
    assert gain.gain == pytest.approx(summarize(after).success_rate - summarize(before).success_rate)
    assert "+50.0 points" in gain.summary() and "McNemar p = 0.219" in gain.summary()


def test_paired_gain_leaves_out_episodes_whose_environment_failed_in_either():
    before = outcomes([0, 0, 1], failed=[False, True, False])
    after = outcomes([1, 1, 1], failed=[False, False, False])
    gain = paired_gain(before, after)
    assert gain.episodes == 2 and gain.won_after_only == 1 and gain.gain == pytest.approx(0.5)


def test_paired_gain_needs_the_same_episodes():
    with pytest.raises(ValueError, match="3 outcomes before, 2 after"):
        paired_gain(outcomes([1, 0, 1]), outcomes([1, 0]))


def test_outcomes_round_trip_through_the_run_directory(tmp_path):
    assert load_outcomes(tmp_path) == {}  # a run written before outcomes were kept
    save_outcomes(tmp_path, {"before": outcomes([1, 0])})
    assert run_paired_gain(load_outcomes(tmp_path)) is None  # no final evaluation yet
    save_outcomes(tmp_path, {"before": outcomes([1, 0]), "after": outcomes([1, 1])})
    assert run_paired_gain(load_outcomes(tmp_path)).won_after_only == 1
