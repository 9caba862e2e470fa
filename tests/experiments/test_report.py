"""The comparison values of a run and the per-preset table, against values worked out by hand
(column definitions: docs/COMPARE.md)."""

import statistics

import pytest

from spear.experiments.report import aggregate, markdown_table, summarise_run


def record(step, **values):
    return {"step": step, **values}


def test_summarise_run_definitions():
    # 20 RL steps: entropy windows of 20 // 10 = 2 steps; the middle one starts at index (20 - 2) // 2
    records = [record(0, **{"eval/success_rate": 0.0, "eval/score": 0.0})]
    for step in range(1, 21):
        values = {
            "rollout/success_rate": step / 20,
            "rollout/tool_calls": 2.0,
            "actor/entropy": float(step),
            "time/step": 0.5,
        }
        if step == 10:
            values["eval/success_rate"] = 0.5
        records.append(record(step, **values))
    records.append(record(20, **{"eval/final_success_rate": 1.0}))
    summary = summarise_run(records)
    assert summary["steps"] == 20
    assert summary["eval_before"] == 0.0 and summary["final_success"] == 1.0
    assert summary["success_auc"] == pytest.approx(sum(range(1, 21)) / 20 / 20)
    # trapezoid over (0, 0.0), (10, 0.5), (20, 1.0): (2.5 + 7.5) / 20
    assert summary["eval_auc"] == pytest.approx(0.5)
    assert summary["tool_calls"] == 2.0 and summary["time_per_step"] == 0.5
    assert summary["entropy_start"] == 1.5  # steps 1, 2
    assert summary["entropy_middle"] == 10.5  # steps 10, 11: centred on the run's midpoint
    assert summary["entropy_end"] == 19.5  # steps 19, 20


def test_a_run_without_evaluations_or_updates_has_gaps_not_zeros():
    records = [record(1, **{"rollout/success_rate": 0.25}), record(2, **{"rollout/success_rate": 0.75})]
    summary = summarise_run(records)
    assert summary["success_auc"] == 0.5
    for key in ("eval_before", "final_success", "eval_auc", "entropy_start", "time_per_step"):
        assert summary[key] is None


def test_aggregate_and_table_formatting():
    runs = [
        {"preset": "a", "seed": 0, **summarise_run([record(1, **{"rollout/success_rate": 0.2})])},
        {"preset": "a", "seed": 1, **summarise_run([record(1, **{"rollout/success_rate": 0.4})])},
        {"preset": "b", "seed": 0, **summarise_run([record(1, **{"rollout/success_rate": 0.5})])},
    ]
    rows = aggregate(runs, ["b", "a"])
    assert [r["preset"] for r in rows] == ["b", "a"]
    assert rows[1]["success_auc_mean"] == pytest.approx(0.3)
    assert rows[1]["success_auc_std"] == pytest.approx(statistics.stdev([0.2, 0.4]))
    assert rows[0]["success_auc_std"] is None  # one seed: no spread to report
    table = markdown_table(rows)
    assert "| a | 2 | n/a | n/a | 30.0 ± 14.1 |" in table
    assert "| b | 1 | n/a | n/a | 50.0 |" in table


def test_the_paired_gain_comes_from_the_runs_per_episode_outcomes():
    records = [record(0, **{"eval/success_rate": 0.25}), record(1, **{"eval/final_success_rate": 0.75})]
    assert summarise_run(records)["paired_p"] is None  # a run without eval_outcomes.json
    columns = {"score": [0.0] * 4, "turns": [1] * 4, "tool_calls": [0] * 4, "failed": [False] * 4}
    stored = {
        "before": {**columns, "won": [True, False, False, False]},
        "after": {**columns, "won": [True, True, True, False]},
    }
    summary = summarise_run(records, stored)
    # 2 episodes won only after, none only before: gain 0.5, p = 2 * 1/4 = 0.5
    assert summary["paired_gain"] == pytest.approx(0.5) and summary["paired_p"] == pytest.approx(0.5)
    assert summary["paired_gain_low"] < 0.5 < summary["paired_gain_high"]
