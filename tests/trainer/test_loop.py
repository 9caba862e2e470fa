"""End to end on a micro config: metrics, SIL firing, schedules, checkpoints and exact resume.

The 'parity' environment is registered in conftest.py."""

import json
import math

import numpy as np
import pytest
import torch
from micro import make_trainer, micro_config

from spear.algo.replay import capacity_for_rows
from spear.algo.schedules import cosine_decay, cosine_warmup
from spear.trainer.checkpoint import latest_checkpoint
from spear.trainer.evaluate import load_outcomes, summarize
from spear.trainer.loop import Trainer
from spear.trainer.run import evaluate_model, resume, train


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_micro_run_writes_everything(base_model, tmp_path):
    trainer = make_trainer(base_model, tmp_path)
    summary = trainer.fit(progress=False)
    rows = {r["step"]: r for r in read_metrics(tmp_path) if "rollout/success_rate" in r}
    assert sorted(rows) == [1, 2, 3, 4]
    required = [
        "rollout/success_rate",
        "rollout/env_reward",
        "rollout/tool_calls",
        "actor/entropy",
        "actor/ppo_clipfrac",
        "actor/cov_clipfrac",
        "schedule/lambda_tool",
        "schedule/lambda_sil",
        "sil/buffer_rows",
        "sil/replay_rows",
        "time/rollout",
        "time/log_prob",
        "time/update",
        "time/replay",
    ]
    for step, row in rows.items():
        missing = [k for k in required if k not in row]
        assert not missing, f"step {step} lacks {missing}"
        # logged schedules are the schedule functions (T = the run's length, 4 steps)
        assert row["schedule/lambda_tool"] == pytest.approx(cosine_decay(step, 4))
        assert row["schedule/lambda_sil"] == pytest.approx(cosine_warmup(step, 4))
    assert summary["eval_before"].episodes == 3 and summary["eval_after"].episodes == 3
    # both evaluations are kept per episode and paired: the gain is the change of the rates
    stored = load_outcomes(tmp_path)
    assert summarize(stored["before"]) == summary["eval_before"]
    assert summarize(stored["after"]) == summary["eval_after"]
    paired = summary["eval_paired"]
    assert paired.episodes == 3
    assert paired.gain == pytest.approx(
        summary["eval_after"].success_rate - summary["eval_before"].success_rate
    )
    assert any("eval/success_rate" in r for r in read_metrics(tmp_path) if r["step"] == 2)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "entropy.png",
        "schedules.png",
        "success.png",
        "tool_calls.png",
    ]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    # spear eval replays the training settings stored beside the final model
    result = evaluate_model(str(tmp_path / "final_model"), None, 2)
    assert result.episodes == 2 and 0.0 <= result.success_rate <= 1.0
    # another decoder plays the same tokens, so the same episodes end the same way
    assert evaluate_model(str(tmp_path / "final_model"), None, 2, decode="static") == result


def test_buffer_fills_fires_and_sil_changes_parameters_only_when_it_fires(base_model, tmp_path):
    trainer = make_trainer(base_model, tmp_path, "env.name=parity", "env.options={}")
    replay_calls = []
    original = trainer._update

    def spy(batch, step, *, replay, weight=1.0, epoch=0):
        before = [p.detach().clone() for p in trainer.model.parameters()]
        out = original(batch, step, replay=replay, weight=weight, epoch=epoch)
        changed = any(not torch.equal(a, p) for a, p in zip(before, trainer.model.parameters(), strict=True))
        if replay:
            replay_calls.append((step, weight, changed))
        return out

    trainer._update = spy
    fired = []
    for step in range(1, 5):
        metrics = trainer.train_step(step)
        fired.append(bool(metrics["sil/fired"]))
        if not metrics["sil/fired"]:
            assert metrics["sil/replay_rows"] == 0
    assert not fired[0], "nothing can be replayed at step 1: replay data come from earlier steps only"
    assert any(fired), "the buffer never fired on the micro run"
    assert [s for s, _, _ in replay_calls] == [s for s, f in zip(range(1, 5), fired, strict=True) if f]
    assert all(changed for _, _, changed in replay_calls)
    assert all(w == pytest.approx(cosine_warmup(s, 4)) for s, w, _ in replay_calls)


def _comparable(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_resume_reproduces_the_uninterrupted_run(base_model, tmp_path, monkeypatch):
    config = [f"model.path={base_model}", "sft.enabled=false", "env.name=parity", "env.options={}"]
    train(micro_config(*config), run_dir=tmp_path / "straight", quiet=True)
    assert any(r.get("sil/fired") for r in read_metrics(tmp_path / "straight") if r["step"] >= 3)

    interrupted = tmp_path / "interrupted"
    original = Trainer.train_step

    def ctrl_c_at_step_three(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", ctrl_c_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        train(micro_config(*config), run_dir=interrupted, quiet=True)
    assert latest_checkpoint(interrupted).name == "step-000002"  # Ctrl-C wrote the last complete step
    monkeypatch.setattr(Trainer, "train_step", original)

    summary = resume(interrupted, quiet=True)
    a = [r for r in read_metrics(tmp_path / "straight") if r["step"] >= 3]
    b = [r for r in read_metrics(interrupted) if r["step"] >= 3]
    assert _comparable(a) == _comparable(b)
    # the evaluation before RL survives the interruption, so the final one is still paired with it
    assert load_outcomes(interrupted) == load_outcomes(tmp_path / "straight")
    assert summary["eval_paired"] is not None


def test_a_torn_checkpoint_is_ignored_on_resume(base_model, tmp_path):
    config = micro_config("steps=2", f"model.path={base_model}", "sft.enabled=false")
    train(config, run_dir=tmp_path, quiet=True)
    final = latest_checkpoint(tmp_path)
    # SIGKILL during a save leaves a hidden temporary folder; LATEST still names the last complete one
    torn = tmp_path / "checkpoints" / ".step-000003.partial"
    torn.mkdir()
    (torn / "state.pt").write_bytes(b"\x00garbage")
    assert latest_checkpoint(tmp_path) == final
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config_path.read_text().replace("steps: 2", "steps: 3"))
    summary = resume(tmp_path, quiet=True)
    assert summary["eval_after"] is not None
    steps = [r["step"] for r in read_metrics(tmp_path) if "rollout/success_rate" in r]
    assert steps == [1, 2, 3]


def test_a_nonfinite_loss_skips_the_update_and_is_logged(base_model, tmp_path):
    trainer = make_trainer(base_model, tmp_path)
    trainer.config["actor"]["entropy_coeff"] = math.inf
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.train_step(1)
    assert metrics["actor/nonfinite_skipped"] >= 1
    assert metrics["actor/optimizer_steps"] == 0
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.model.parameters(), strict=True))


def test_group_filter_and_response_filters_run(base_model, tmp_path):
    trainer = make_trainer(
        base_model,
        tmp_path,
        "algorithm.filters=[overlong, incomplete, repetitive, unreadable]",
        "algorithm.group_filter.ratio=0.5",
    )
    metrics = trainer.train_step(1)
    assert metrics["rollout/rows_after_group_filter"] < metrics["rollout/rows"]
    assert 0.0 <= metrics["filter/any"] <= 1.0
    assert np.isfinite(metrics["schedule/lambda_tool"])


def test_auto_capacity_is_half_the_first_steps_rows_and_stays(base_model, tmp_path):
    """sil.buffer.capacity: auto sizes N_D from the rows step 1 hands to the buffer (spec 7 ratio)."""
    trainer = make_trainer(
        base_model, tmp_path, "env.name=parity", "env.options={}", "sil.buffer.capacity=auto"
    )
    first = trainer.train_step(1)
    rows = int(first["rollout/rows_after_group_filter"])
    assert first["sil/capacity"] == capacity_for_rows(rows, 0.5)
    assert trainer.train_step(2)["sil/capacity"] == first["sil/capacity"]


@pytest.mark.parametrize("weight_at", ["loss", "clipped_gradient"])
def test_the_replay_update_size_tracks_lambda_sil_only_when_weighted_after_the_clip(
    base_model, tmp_path, weight_at
):
    """With a clip that binds on every optimizer step (grad_clip 1e-6), the official order
    (lambda_sil on the loss, then the clip) makes the replay step as large as the on-policy
    one whatever lambda_sil(t) is; sil.weight_at=clipped_gradient scales the clipped replay
    gradient, so the ratio of applied gradient norms is lambda_sil(t) itself."""
    config = [f"model.path={base_model}", "sft.enabled=false", "env.name=parity", "env.options={}"]
    config += ["actor.grad_clip=1e-6", f"sil.weight_at={weight_at}", "eval.final_episodes=0", "eval.every=0"]
    train(micro_config(*config), run_dir=tmp_path, quiet=True)
    fired = [r for r in read_metrics(tmp_path) if r.get("sil/fired")]
    assert fired, "the buffer never fired"
    for row in fired:
        ratio = row["sil/grad_norm_applied"] / row["actor/grad_norm_applied"]
        assert row["sil/grad_norm"] > 1e-6 and row["actor/grad_norm"] > 1e-6  # the clip binds
        expected = row["schedule/lambda_sil"] if weight_at == "clipped_gradient" else 1.0
        assert ratio == pytest.approx(expected, rel=1e-6)
    assert len({round(r["schedule/lambda_sil"], 6) for r in fired}) > 1 or weight_at == "loss"


def test_ppo_epochs_interleave_the_on_policy_and_replay_passes_as_the_official_update(
    base_model, tmp_path, monkeypatch
):
    """spec 10 ("Epoch nesting"): per PPO epoch the on-policy mini-batches, then the replay ones."""
    calls = []
    update = Trainer._update

    def recorded(self, batch, step, *, replay, weight=1.0, epoch=0):
        calls.append((step, "replay" if replay else "on-policy", epoch))
        return update(self, batch, step, replay=replay, weight=weight, epoch=epoch)

    monkeypatch.setattr(Trainer, "_update", recorded)
    trainer = make_trainer(base_model, tmp_path, "env.name=parity", "env.options={}", "actor.ppo_epochs=2")
    fired = [trainer.train_step(step)["sil/fired"] for step in (1, 2, 3)]
    step = 1 + fired.index(1.0)
    assert [c[1:] for c in calls if c[0] == step] == [
        ("on-policy", 0),
        ("replay", 0),
        ("on-policy", 1),
        ("replay", 1),
    ]


@pytest.mark.parametrize("order", ["trajectory", "turn"])
def test_mini_batches_are_cut_from_trajectory_major_rows_as_the_official_trainer(base_model, tmp_path, order):
    """spec 10 ("Row order is trajectory-major"): with actor.minibatch_order=trajectory the
    update rows run trajectory by trajectory, each turn by turn, so a mini-batch holds whole
    trajectories; ``turn`` keeps the engine's order (one turn depth across episodes)."""
    trainer = make_trainer(
        base_model, tmp_path, f"actor.minibatch_order={order}", "algorithm.group_filter.ratio=1.0"
    )
    step_batch, _ = trainer.prepare(1, {})
    rows = list(
        zip(step_batch.rollout.traj_index.tolist(), step_batch.rollout.turn_index.tolist(), strict=True)
    )
    if order == "trajectory":
        assert rows == sorted(rows)
    else:
        assert [turn for _, turn in rows] == sorted(turn for _, turn in rows)
    assert max(turn for _, turn in rows) >= 1  # several turns: the two orders differ
