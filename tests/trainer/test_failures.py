"""Runtime failures are loud: a user environment that breaks the protocol stops the run in
one line; exceptions inside episodes are logged in full once, counted every step, and stop
the run when they are most of a batch; no NaN interval is ever printed."""

import json
import math
import textwrap
from pathlib import Path

import pytest

from spear.cli import main
from spear.trainer.evaluate import EvalResult, paired_gain, summarize
from spear.trainer.failures import ERRORS_LOG

SMALL = [
    "--steps",
    "2",
    "--quiet",
    "rollout.tasks_per_step=2",
    "rollout.group_size=2",
    "rollout.max_new_tokens=16",
    "eval.every=0",
    "eval.final_episodes=4",
    "checkpoint.every=0",
    "logging.plots=false",
    "logging.tensorboard=false",
]

MODULE = """
from spear.envs.base import StepResult, step_info
from examples.envs.guess_number import GuessNumberEnv


class BareReset(GuessNumberEnv):
    def reset(self, seed):
        return super().reset(seed)[0]


class TupleStep(GuessNumberEnv):
    def step(self, action_text):
        result = super().step(action_text)
        return result.observation, result.reward, result.done, result.info


class NoWonKey(GuessNumberEnv):
    def step(self, action_text):
        result = super().step(action_text)
        del result.info["won"]
        return result


class AlwaysRaises(GuessNumberEnv):
    def step(self, action_text):
        raise RuntimeError("boom in the user's step")


class SometimesRaises(GuessNumberEnv):
    def reset(self, seed):
        self.fragile = seed % 5 == 0
        return super().reset(seed)

    def step(self, action_text):
        if self.fragile:
            raise ValueError("rare failure")
        return super().step(action_text)
"""

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def user_envs(tmp_path, monkeypatch):
    (tmp_path / "failing_envs.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT))  # examples.envs.guess_number


def train(base_model, tmp_path, cls, capsys):
    run_dir = tmp_path / cls
    code = main(
        [
            "train",
            "--env",
            f"failing_envs:{cls}",
            "--model",
            str(base_model),
            "--run-dir",
            str(run_dir),
            *SMALL,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err, run_dir


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("BareReset", "BareReset.reset() must return a tuple (observation: str, info: dict), got str"),
        ("TupleStep", "TupleStep.step() must return a spear.envs.base.StepResult"),
        ("NoWonKey", "NoWonKey.step() returned an info without 'won'"),
    ],
)
def test_a_protocol_violation_stops_the_run_in_one_line(
    base_model, tmp_path, user_envs, capsys, cls, expected
):
    code, output, _ = train(base_model, tmp_path, cls, capsys)
    assert code == 2
    assert expected in output
    assert "Traceback" not in output and "nan" not in output
    assert sum(line.startswith("spear: ") for line in output.splitlines()) == 1


def test_most_episodes_raising_stops_the_run_with_the_error_logged(base_model, tmp_path, user_envs, capsys):
    code, output, run_dir = train(base_model, tmp_path, "AlwaysRaises", capsys)
    assert code == 1
    assert "4 of 4 episodes raised an exception, first RuntimeError: boom in the user's step" in output
    assert "Traceback" not in output and "nan" not in output
    log = (run_dir / ERRORS_LOG).read_text()
    # the first occurrence in full: the traceback down to the user's line
    assert "Traceback (most recent call last)" in log and 'raise RuntimeError("boom' in log
    assert log.count("RuntimeError: boom") == 1


def test_rare_episode_failures_are_counted_and_logged_once(base_model, tmp_path, user_envs, capsys):
    code, output, run_dir = train(base_model, tmp_path, "SometimesRaises", capsys)
    assert code == 0, output
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    failed = [r["rollout/episodes_failed"] for r in rows if "rollout/episodes_failed" in r]
    assert len(failed) == 2  # one count per training step
    log = (run_dir / ERRORS_LOG).read_text()
    assert log.count("ValueError: rare failure") == 1  # the same error again is only counted
    assert output.count("an episode raised ValueError: rare failure") == 1


def test_no_nan_and_no_interval_outside_the_scores_range():
    empty = EvalResult(0, 0.0, (0.0, 1.0), 0.0, (math.nan, math.nan), 0.0, 0.0)
    assert "nan" not in empty.summary() and "no episode completed" in empty.summary()
    one = summarize({"won": [True], "score": [1.0], "turns": [3], "tool_calls": [3], "failed": [False]})
    assert "nan" not in one.summary() and "one episode" in one.summary()
    # 32 episodes, one scoring 1.0: the normal approximation's lower bound would be -0.030
    outcomes = {
        "won": [False] * 31 + [True],
        "score": [0.0] * 31 + [1.0],
        "turns": [1] * 32,
        "tool_calls": [1] * 32,
        "failed": [False] * 32,
    }
    low, high = summarize(outcomes).score_ci
    assert low == 0.0 and 0 < high < 1
    nothing = {"won": [True], "failed": [True]}
    assert "nan" not in paired_gain(nothing, nothing).summary()
    everything = {"won": [True] * 40, "failed": [False] * 40}
    assert paired_gain({"won": [False] * 40, "failed": [False] * 40}, everything).ci[1] <= 1.0
