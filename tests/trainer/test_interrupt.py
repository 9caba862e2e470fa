"""Ctrl-C as a user meets it: ``spear train`` receives SIGINT at several points of a step,
exits with code 130 and one line saying how to resume, and ``spear train --resume`` then
continues to the same metrics and final weights as an uninterrupted run, bit for bit.
SIGTERM takes the same path.

The signal is the real one (``os.kill(getpid(), SIGINT)``), sent from inside the step by
wrapping one internal function; production code knows nothing of the test.
"""

import json
import os
import signal

import pytest
import torch
from micro import MICRO
from safetensors.torch import load_file

import spear.trainer.loop as loop
from spear.cli import main
from spear.trainer.checkpoint import latest_checkpoint
from spear.trainer.loop import Trainer

SETTINGS = [
    *MICRO,
    "env.name=parity",
    "env.options={}",
    "sft.enabled=false",
    "logging.plots=false",
    "logging.tensorboard=false",
]


def ctrl_c(times: int = 1) -> None:
    for _ in range(times):
        os.kill(os.getpid(), signal.SIGINT)


def spear_train(model, run_dir, capsys):
    code = main(["train", "--quiet", "--model", str(model), "--run-dir", str(run_dir), *SETTINGS])
    return code, capsys.readouterr().err


def spear_resume(run_dir, capsys):
    code = main(["train", "--quiet", "--resume", str(run_dir)])
    return code, capsys.readouterr().err


def metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def weights(run_dir):
    return load_file(run_dir / "final_model" / "model.safetensors")


@pytest.fixture(scope="module")
def straight(base_model, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    assert main(["train", "--quiet", "--model", str(base_model), "--run-dir", str(run_dir), *SETTINGS]) == 0
    rows = metrics(run_dir)
    assert any(r.get("sil/fired") for r in rows if r["step"] == 4), "the replay update should run at step 4"
    return run_dir


def assert_same_run(run_dir, straight_dir):
    assert metrics(run_dir) == metrics(straight_dir)  # every logged value, exactly
    a, b = weights(run_dir), weights(straight_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def interrupted_then_resumed(
    base_model, run_dir, straight_dir, monkeypatch, capsys, *, kept_step, lost=False
):
    code, err = spear_train(base_model, run_dir, capsys)
    monkeypatch.undo()  # the resumed process is a plain one
    assert code == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines[-1].startswith("spear: interrupted: ") and f"--resume {run_dir}" in lines[-1], err
    assert f"checkpoint of step {kept_step} kept" in lines[-1]
    assert ("is lost" in lines[-1]) == lost
    assert latest_checkpoint(run_dir).name == f"step-{kept_step:06d}"
    assert not (run_dir / "final_model").exists()
    code, err = spear_resume(run_dir, capsys)
    assert code == 0, err
    assert_same_run(run_dir, straight_dir)


def test_ctrl_c_in_the_rollout_checkpoints_the_step_before(
    base_model, straight, tmp_path, monkeypatch, capsys
):
    rollout = Trainer.rollout

    def interrupted(self, step):
        if step == 4:
            ctrl_c()
        return rollout(self, step)

    monkeypatch.setattr(Trainer, "rollout", interrupted)
    # step 3 was not due for a checkpoint (every 2): the interrupt writes it, from a clean state
    interrupted_then_resumed(base_model, tmp_path / "run", straight, monkeypatch, capsys, kept_step=3)


@pytest.mark.parametrize("replay", [False, True])
def test_ctrl_c_in_an_update_finishes_the_step_first(
    base_model, straight, tmp_path, monkeypatch, capsys, replay
):
    update = Trainer._update

    def interrupted(self, batch, step, *, replay, weight=1.0, epoch=0):
        if step == 4 and replay == wanted:
            ctrl_c()
        return update(self, batch, step, replay=replay, weight=weight, epoch=epoch)

    wanted = replay
    monkeypatch.setattr(Trainer, "_update", interrupted)
    interrupted_then_resumed(base_model, tmp_path / "run", straight, monkeypatch, capsys, kept_step=4)


def test_ctrl_c_during_a_checkpoint_write_keeps_it_whole(base_model, straight, tmp_path, monkeypatch, capsys):
    save = loop.save_checkpoint

    def interrupted(run_dir, step, **kwargs):
        if step == 2:
            ctrl_c()
        return save(run_dir, step, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", interrupted)
    interrupted_then_resumed(base_model, tmp_path / "run", straight, monkeypatch, capsys, kept_step=2)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_older_checkpoint(
    base_model, straight, tmp_path, monkeypatch, capsys
):
    """Two Ctrl-C after step 3's first optimizer step changed the weights: the live state is
    half-updated, so nothing is written; step 2's checkpoint (every 2) resumes."""
    current = {"step": 0}
    train_step, optimizer_step = Trainer.train_step, torch.optim.AdamW.step

    def tracked(self, step):
        current["step"] = step
        return train_step(self, step)

    def interrupted(self, *args, **kwargs):
        result = optimizer_step(self, *args, **kwargs)
        if current["step"] == 3:
            current["step"] = 0
            ctrl_c(times=2)
        return result

    monkeypatch.setattr(Trainer, "train_step", tracked)
    monkeypatch.setattr(torch.optim.AdamW, "step", interrupted)
    interrupted_then_resumed(
        base_model, tmp_path / "run", straight, monkeypatch, capsys, kept_step=2, lost=True
    )


@pytest.mark.parametrize("signals", [("SIGTERM", "SIGTERM"), ("SIGINT", "SIGTERM")])
def test_sigterm_in_an_update_finishes_the_step_as_ctrl_c_does(
    base_model, straight, tmp_path, monkeypatch, capsys, signals
):
    """``kill PID`` (or a scheduler's pre-emption) takes the Ctrl-C path; a SIGTERM while a
    stop is under way (a repeat, or after Ctrl-C: a group kill) is not a second Ctrl-C, so the
    step still completes and nothing is lost."""
    update = Trainer._update

    def terminated(self, batch, step, *, replay, weight=1.0, epoch=0):
        if step == 4 and not replay:
            for name in signals:
                os.kill(os.getpid(), getattr(signal, name))
        return update(self, batch, step, replay=replay, weight=weight, epoch=epoch)

    monkeypatch.setattr(Trainer, "_update", terminated)
    before = signal.getsignal(signal.SIGTERM)
    interrupted_then_resumed(base_model, tmp_path / "run", straight, monkeypatch, capsys, kept_step=4)
    assert signal.getsignal(signal.SIGTERM) is before  # the CLI restores what it replaced


def test_ctrl_c_before_the_first_step_leaves_nothing_to_resume(base_model, tmp_path, monkeypatch, capsys):
    rollout = Trainer.rollout
    monkeypatch.setattr(Trainer, "rollout", lambda self, step: ctrl_c() or rollout(self, step))
    code, err = spear_train(base_model, tmp_path / "run", capsys)
    assert code == 130 and "Traceback" not in err
    assert "no step was checkpointed: nothing to resume" in err.splitlines()[-1]


def test_resuming_a_finished_run_says_so_and_changes_nothing(straight, capsys):
    before = (straight / "metrics.jsonl").read_bytes()
    code = main(["train", "--resume", str(straight)])
    out = capsys.readouterr().out
    assert code == 0 and "is finished" in out and "nothing to resume" in out
    assert "eval success:" in out  # the stored evaluations are reported again
    assert (straight / "metrics.jsonl").read_bytes() == before
