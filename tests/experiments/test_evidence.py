"""Paired gains and mechanism diagnostics of a sweep, against values computed by hand."""

import pytest

from spear.experiments.evidence import (
    bonus_window,
    bonus_window_table,
    gains_table,
    least_squares_slope,
    paired_difference,
    pairs_for,
    pooled_episodes_table,
    pooled_gain,
    ratio_of_means,
    run_diagnostics,
    sample_efficiency_table,
    significant_move,
    smoothed,
    stability_gaps_table,
    stability_table,
    stability_verdict,
    start_gains_table,
)


def summary(preset, seed, final, step_time=1.0):
    return {
        "preset": preset,
        "seed": seed,
        "final_success": final,
        "eval_auc": None,
        "success_auc": final,
        "time_per_step": step_time,
    }


SUMMARIES = [
    summary("drbot", 0, 0.30, 2.0),
    summary("spear", 0, 0.40, 2.2),
    summary("drbot", 1, 0.20, 2.0),
    summary("spear", 1, 0.50, 2.4),
    summary("spear", 2, 0.90),  # no drbot run with seed 2: not paired
]


def test_differences_are_paired_by_seed():
    mean, std, n = paired_difference(SUMMARIES, "spear", "drbot", "final_success")
    # seed 0: +0.10, seed 1: +0.30 -> mean 0.20, sample std sqrt(0.02) = 0.1414
    assert n == 2
    assert mean == pytest.approx(0.20)
    assert std == pytest.approx(0.02**0.5)
    assert paired_difference(SUMMARIES, "spear", "drbot", "eval_auc") == (None, None, 0)


def test_step_time_ratio_and_pairs():
    # spear mean (2.2 + 2.4 + 1.0) / 3 = 1.8667 over drbot 2.0
    assert ratio_of_means(SUMMARIES, "spear", "drbot", "time_per_step") == pytest.approx(
        1.8667 / 2.0, rel=1e-4
    )
    presets = ["grpo", "drbot", "spear", "spear-no-sil", "gigpo"]
    assert pairs_for(presets) == [("spear", "drbot"), ("spear", "grpo"), ("spear-no-sil", "spear")]
    # the official drbot-gigpo+spear is not a variant of drbot; a gigpo+spear variant meets
    # both the paper's base and the preset it changes
    presets = ["drbot", "gigpo", "gigpo+spear", "drbot-gigpo+spear", "gigpo+spear-mixed-std"]
    assert pairs_for(presets) == [
        ("gigpo+spear", "gigpo"),
        ("gigpo+spear-mixed-std", "gigpo"),
        ("gigpo+spear-mixed-std", "gigpo+spear"),
    ]


def test_gains_table_shows_points_and_the_papers_reference():
    table = gains_table(SUMMARIES, ["drbot", "spear"], "household")
    row = table.splitlines()[2]
    assert row.startswith("| spear | drbot | 2 | +20.0 ± 14.1 | n/a | +20.0 ± 14.1 | 0.93 | +8.6 |")
    assert "paper, ALFWorld (points)" in table.splitlines()[0]
    shop, math = (
        gains_table(SUMMARIES, ["drbot", "spear"], "shop"),
        gains_table(SUMMARIES, ["drbot", "spear"], "math"),
    )
    assert shop.splitlines()[2].endswith("| +13.9 |") and "paper, WebShop" in shop
    assert math.splitlines()[2].endswith("| +3.8 |") and "paper, AIME24" in math
    sokoban = gains_table(SUMMARIES, ["drbot", "spear"], "sokoban")
    assert sokoban.splitlines()[2].endswith("| +9.4 |") and "paper, Sokoban" in sokoban
    other = gains_table(SUMMARIES, ["drbot", "spear"], "textworld")
    assert "| paper (points) |" in other and other.splitlines()[2].endswith("| n/a |")


def test_run_diagnostics():
    records = [{"step": 0, "eval/success_rate": 0.5}] + [
        {
            "step": t,
            "rollout/success_rate": 0.1,
            "rollout/invalid_action_rate": 0.1 * t,
            "sil/fired": float(t % 5 == 0),
            "sil/replay_rows": 32.0 if t % 5 == 0 else 0.0,
            "actor/ppo_clipfrac": 0.01,
            "rollout/turns": float(t),
        }
        for t in range(1, 21)
    ]
    d = run_diagnostics(records)
    assert d["sil_fired"] == 4.0  # steps 5, 10, 15, 20
    assert d["replay_rows"] == 32.0  # averaged over firing steps only
    assert d["invalid_start"] == pytest.approx((0.1 + 0.2) / 2)  # first 10% = 2 of 20 steps
    assert d["invalid_end"] == pytest.approx((1.9 + 2.0) / 2)
    assert d["ppo_clipfrac"] == pytest.approx(0.01)
    assert d["cov_clipfrac"] is None
    assert (d["turns_start"], d["turns_end"]) == (1.5, 19.5)
    assert d["tool_calls_start"] is None


def test_start_gains_table_counts_runs_that_moved_by_mcnemar():
    runs = [
        {"preset": "drbot", "seed": 0, "paired_gain": 0.10, "paired_p": 0.01},  # up
        {"preset": "drbot", "seed": 1, "paired_gain": 0.02, "paired_p": 0.40},  # no significant change
        {"preset": "grpo", "seed": 0, "paired_gain": -0.60, "paired_p": 1e-9},  # down
        {"preset": "grpo", "seed": 1, "paired_gain": None, "paired_p": None},  # no outcomes kept
    ]
    rows = start_gains_table(runs, ["drbot", "grpo"]).splitlines()
    assert rows[2] == "| drbot | 2 | +6.0 | 1 | 0 | 1 | 0 |"
    assert rows[3] == "| grpo | 2 | -60.0 | 0 | 1 | 0 | 1 |"


def outcomes(won, failed=None):
    return {"won": won, "failed": failed or [False] * len(won)}


def test_pooled_gain_concatenates_the_seeds_episodes():
    # seed 0: B alone wins episodes 1 and 3, A alone episode 2; seed 1: B alone wins episode 0,
    # and episode 1 failed in B's evaluation, so it is left out: n = 5, c = 3, b = 1
    pairs = [
        (outcomes([1, 0, 1, 0]), outcomes([1, 1, 0, 1])),
        (outcomes([0, 0]), outcomes([1, 0], failed=[False, True])),
        (None, outcomes([1])),  # a run without stored outcomes: left out
    ]
    gain = pooled_gain(pairs)
    assert (gain.episodes, gain.won_after_only, gain.won_before_only) == (5, 3, 1)
    assert gain.gain == pytest.approx(0.4)
    half = 1.959964 * ((4 - 4 / 5) / 25) ** 0.5  # ((b + c) - (c - b)^2 / n) / n^2
    assert gain.ci == pytest.approx((0.4 - half, 1.0))  # 0.4 + half = 1.10: cut to the largest change
    assert gain.p_value == pytest.approx(2 * (1 + 4) / 16)  # exact McNemar, b = 1 of 4
    assert pooled_gain([(None, None)]) is None
    assert pooled_gain([(outcomes([1], failed=[True]), outcomes([0]))]) is None  # no episode left


def test_pooled_episodes_table_compares_with_the_start_and_between_presets():
    start = outcomes([0, 0, 1, 1])
    runs = {
        ("drbot", 0): {"before": start, "after": outcomes([1, 0, 1, 1])},
        ("spear", 0): {"before": start, "after": outcomes([1, 1, 1, 0])},
        ("spear", 1): {"before": start, "after": outcomes([1, 1, 1, 1])},  # no drbot seed 1: not paired
        ("grpo", 0): {},  # written before outcomes were kept
    }
    rows = pooled_episodes_table(runs, ["grpo", "drbot", "spear"]).splitlines()
    assert rows[2] == "| grpo - its start | 0 | 0 | n/a | n/a | n/a | n/a |"
    assert rows[3].startswith("| drbot - its start | 1 | 4 | +25.0 (")
    assert rows[4].startswith("| spear - its start | 2 | 8 | +37.5 (")  # 4 won only after, 1 only before
    assert rows[4].endswith("| 4 | 1 | 0.38 |")
    assert rows[5].startswith(
        "| spear - drbot | 1 | 4 | +0.0 ("
    )  # spear alone wins episode 1, drbot episode 3
    assert rows[5].endswith("| 1 | 1 | 1 |")
    assert rows[6] == "| spear - grpo | 0 | 0 | n/a | n/a | n/a | n/a |"
    assert len(rows) == 7


def test_smoothed_is_a_trailing_mean_from_the_window_th_step():
    series = [(1, 0.0), (2, 0.3), (3, 0.6), (4, 0.3)]
    steps, means = zip(*smoothed(series, 2), strict=True)
    assert steps == (2, 3, 4) and means == pytest.approx((0.15, 0.45, 0.45))
    assert smoothed(series, 5) == []
    with pytest.raises(ValueError, match="window must be >= 1"):
        smoothed(series, 0)


def test_sample_efficiency_finds_the_level_every_run_reaches_and_pairs_by_seed():
    def curve(*values):
        return list(enumerate(values, start=1))

    curves = {
        # 2-step means: spear seed 0 0.1, 0.3, 0.5, 0.6; drbot seed 0 0.1, 0.2, 0.3, 0.4
        ("spear", 0): curve(0.0, 0.2, 0.4, 0.6, 0.6),
        ("drbot", 0): curve(0.0, 0.2, 0.2, 0.4, 0.4),
        # spear seed 1 0.2, 0.4, 0.5, 0.5; drbot seed 1 0.0, 0.4, 0.5, 0.45
        ("spear", 1): curve(0.2, 0.2, 0.6, 0.4, 0.6),
        ("drbot", 1): curve(0.0, 0.0, 0.8, 0.2, 0.7),
        ("spear", 2): curve(0.9, 0.9, 0.9, 0.9, 0.9),
        ("drbot", 2): curve(0.9),  # shorter than the window: seed 2 is left out, not the pair
        ("spear", 3): curve(0.9, 0.9),  # no drbot seed 3: not paired
    }
    table = sample_efficiency_table(curves, ["drbot", "spear"], window=2)
    # the highest 2-step mean all four runs reach: min(0.6, 0.4, 0.5, 0.5) = 0.4
    # first step at >= 0.4: spear 4 (seed 0: 0.5 at step 4), 3 (seed 1: 0.4 at step 3);
    # drbot 5 (seed 0), 3 (seed 1) -> differences -1, 0: mean -0.5, std 0.7071
    # start level: mean of the first 2-step means (0.1 + 0.1 + 0.2 + 0.0) / 4 = 0.1
    assert table.splitlines()[2] == (
        "| spear | drbot | 2 | 40.0 | 10.0 | 3.5 (4, 3) | 4.0 (5, 3) | -0.5 ± 0.7 |"
    )
    assert len(table.splitlines()) == 3  # one pair only


def test_sample_efficiency_tolerates_last_bit_differences_and_says_when_nothing_pairs():
    def curve(*values):
        return list(enumerate(values, start=1))

    # 3-step means of k / 30 rates: at step 3 both are 0.1 on paper, but the mean of
    # (0, 0, 9/30) is one bit below the mean of (3/30, 3/30, 3/30), which sets the level
    a = curve(0.0, 0.0, 9 / 30, 0.5)
    b = curve(3 / 30, 3 / 30, 3 / 30)
    table = sample_efficiency_table({("spear", 0): a, ("drbot", 0): b}, ["drbot", "spear"], window=3)
    assert table.splitlines()[2] == "| spear | drbot | 1 | 10.0 | 10.0 | 3.0 (3) | 3.0 (3) | +0.0 |"
    empty = sample_efficiency_table({("spear", 0): a}, ["drbot", "spear"], window=3)
    assert "no pair of presets ran the same seed" in empty


def stability_summary(preset, lr, seed, gain, p, entropy_start=0.1, entropy_end=0.1):
    return {
        "preset": preset,
        "lr": lr,
        "seed": seed,
        "eval_before": 0.25,
        "final_success": 0.25 + gain,
        "paired_gain": gain,
        "paired_gain_low": gain - 0.05,
        "paired_gain_high": gain + 0.05,
        "paired_p": p,
        "entropy_start": entropy_start,
        "entropy_end": entropy_end,
    }


@pytest.mark.parametrize(
    ("gain", "p", "entropy_end", "verdict"),
    [
        (-0.10, 0.04, 0.1, "success falls"),
        (-0.10, 0.06, 0.1, "holds"),  # a fall that is not significant
        (+0.10, 0.001, 0.1, "holds"),  # a significant rise
        (0.0, 1.0, 0.2, "holds"),  # exactly twice: "above twice" is strict
        (0.0, 1.0, 0.201, "entropy runs away"),
        (0.0, 1.0, 0.049, "entropy collapses"),
        (0.0, 1.0, 0.05, "holds"),
        (-0.27, 3e-21, 0.21, "success falls, entropy runs away"),
    ],
)
def test_stability_verdict_applies_the_rule_set_down(gain, p, entropy_end, verdict):
    assert stability_verdict(stability_summary("drbot", 5e-4, 100, gain, p, 0.1, entropy_end)) == verdict


def test_stability_verdict_names_what_a_run_lacks():
    run = stability_summary("grpo", 1e-4, 100, 0.0, 1.0) | {"paired_p": None, "run_dir": "runs/grpo-seed100"}
    with pytest.raises(ValueError, match="runs/grpo-seed100 lacks paired_p"):
        stability_verdict(run)


def test_stability_table_rows_and_counts():
    runs = [
        stability_summary("spear", 5e-4, 101, -0.176, 6e-9),
        stability_summary("spear", 5e-4, 100, 0.02, 0.5, 0.098, 0.12),
        stability_summary("grpo", 1e-4, 100, 0.1, 0.002),
    ]
    table = stability_table(runs).splitlines()
    assert table[2] == (
        "| grpo | 1e-4 | 100 | 25.0% -> 35.0% | +10.0 (+5.0 to +15.0; 0.002) "
        "| 0.100 -> 0.100 (1.00x) | holds |"
    )
    assert table[3].startswith("| spear | 5e-4 | 100 | 25.0% -> 27.0% |")
    assert table[3].endswith("| 0.098 -> 0.120 (1.22x) | holds |")
    assert table[4].startswith("| spear | 5e-4 | 101 | 25.0% -> 7.4% | -17.6 (-22.6 to -12.6; 6e-09) |")
    assert table[4].endswith("| success falls |")
    assert table[-2:] == ["| grpo | 1e-4 | 1 | 0 |", "| spear | 5e-4 | 2 | 1 |"]


def window_run(lambdas, turns=None, entropy=None):
    """metrics.jsonl lines of a run: an eval line at step 0, then one line per training step."""
    lines = [{"step": 0, "eval/success_rate": 0.2, "schedule/lambda_tool": 1.0}]
    for i, lam in enumerate(lambdas):
        line = {"step": i + 1, "rollout/success_rate": 0.1, "schedule/lambda_tool": lam}
        if turns:
            line["rollout/turns"] = turns[i]
        if entropy:
            line["actor/entropy"] = entropy[i]
        lines.append(line)
    return lines


def test_least_squares_slope():
    assert least_squares_slope([(1, 2.0), (2, 3.0), (3, 4.0)]) == pytest.approx(1.0)
    assert least_squares_slope([(1, 1.0), (2, 3.0), (3, 2.0)]) == pytest.approx(0.5)  # (-1*-1 + 1*0)/2
    with pytest.raises(ValueError, match="two distinct x"):
        least_squares_slope([(1, 1.0), (1, 2.0)])


def test_bonus_window_table_measures_each_preset_over_the_bonus_steps():
    decay = [1.0, 0.95, 0.9, 0.8, 0.5]  # lambda_tool >= 0.85 on steps 1-3
    records = {
        ("spear", 0): window_run(decay, turns=[2, 3, 4, 5, 6], entropy=[0.1] * 5),
        ("spear", 1): window_run(decay, turns=[4, 4, 4, 4, 4], entropy=[0.1] * 5),
        ("spear-no-tool-reward", 0): window_run(
            [0.0] * 5, turns=[1, 1, 1, 1, 1], entropy=[0.3, 0.2, 0.1, 0.1, 0.1]
        ),
    }
    assert bonus_window(records) == range(1, 4)  # the eval line at step 0 does not count
    table = bonus_window_table(records, ["spear", "spear-no-tool-reward"]).splitlines()
    assert table[0].startswith("| preset | seeds | turns / episode: steps 1-3 | change / step | after |")
    # turns: window means 3 and 4, slopes 1 and 0, after (5 + 6) / 2 and 4; tool calls not logged
    assert table[2] == (
        "| spear | 2 | 3.50 ± 0.71 | +0.500 ± 0.707 | 4.75 ± 1.06 | n/a | n/a | n/a "
        "| 0.100 ± 0.000 | +0.0000 ± 0.0000 | 0.100 ± 0.000 |"
    )
    assert (
        table[3]
        == "| spear-no-tool-reward | 1 | 1.00 | +0.000 | 1.00 | n/a | n/a | n/a | 0.200 | -0.1000 | 0.100 |"
    )


def test_bonus_window_says_when_no_run_has_the_bonus():
    records = {("drbot", 0): window_run([0.0, 0.0], turns=[1, 1])}
    assert bonus_window(records) is None
    with pytest.raises(ValueError, match="none of these runs has the tool bonus on"):
        bonus_window_table(records, ["drbot"])


def test_stability_gaps_table_pools_the_seeds_both_presets_ran_at_each_lr():
    def won(*wins):
        return {"won": [bool(w) for w in wins], "failed": [False] * len(wins)}

    outcomes = {
        ("spear", 5e-4, 100): won(1, 1, 0, 0),
        ("drbot", 5e-4, 100): won(1, 0, 0, 0),
        ("spear", 5e-4, 101): won(0, 1, 1, 0),
        ("drbot", 5e-4, 101): won(0, 1, 0, 0),
        ("drbot", 1e-4, 100): won(1, 1, 1, 1),  # spear did not run at 1e-4: no row
    }
    runs = [
        stability_summary("spear", 5e-4, 100, 0.25, 1.0),
        stability_summary("drbot", 5e-4, 100, 0.0, 1.0),
        stability_summary("spear", 5e-4, 101, 0.25, 1.0),
        stability_summary("drbot", 5e-4, 101, 0.0, 1.0),
        stability_summary("drbot", 1e-4, 100, 0.75, 1.0),
    ]
    table = stability_gaps_table(runs, outcomes).splitlines()
    assert len(table) == 3
    # pooled: spear 4 of 8, drbot 2 of 8; 2 episodes won by spear only, none by drbot only:
    # exact McNemar p = 2 x 0.5^2 = 0.5
    assert table[2].startswith("| 5e-4 | drbot | 100, 101 | 50.0% | 25.0% | +25.0 (")
    assert table[2].endswith("| 0.5 |")
    assert stability_gaps_table(runs[4:], outcomes).splitlines()[2].startswith("| no lr where spear")


@pytest.mark.parametrize(
    ("gain", "p", "move"),
    [(0.1, 0.01, 1), (-0.1, 0.01, -1), (-0.1, 0.05, 0), (0.1, 0.2, 0), (0.0, 0.0, 0)],
)
def test_significant_move_needs_p_below_alpha(gain, p, move):
    assert significant_move({"paired_gain": gain, "paired_p": p}) == move
