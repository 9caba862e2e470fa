"""SPEAR inside TRL's GRPOTrainer (spear.integrations.trl), on CPU with the tiny embedded model.

* On one fixed rollout, the TRL path's loss and gradients equal our trainer's for the grpo,
  drbot and spear presets (filters and group filter on), to round-off.
* A few RL steps end to end: multi-turn household episodes, the buffer fills and the SIL
  replay update fires.
* The documented example at CI size, from the trajectory-layout policy: well-formed episodes
  and rows left to learn from; checkpoints hold the buffer; ``save_model`` writes
  ``spear_run.yaml``; a policy cold-started in another layout warns as ``spear train`` does.
"""

import copy
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("trl", reason="the TRL integration needs the extra: pip install 'spear-rl[trl]'")

from micro import MICRO
from trl.trainer.utils import pad

from spear.algo.replay import ReplayBuffer, ReplayConfig
from spear.integrations.trl import (
    IntegrationError,
    SpearGRPOTrainer,
    spear_grpo_config,
    step_signal,
    task_dataset,
    task_seeds,
    trl_rows,
    warn_prompt_differences,
)
from spear.integrations.trl.trainer import BUFFER_FILE
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import MANIFEST, read_manifest, starting_policy_dir
from spear.trainer.actor import micro_batch_objective, response_log_probs
from spear.trainer.config import load_config
from spear.trainer.loop import RUN_SETTINGS, Trainer
from spear.trainer.method import step_seed
from spear.trainer.run import prompt_differences

# The parity tests start from the turn-layout policy on purpose (3-turn episodes, well-formed
# enough for the filters to mask some rows and keep others); its layout warning is tested below.
pytestmark = pytest.mark.filterwarnings(
    "ignore:rollout.layout is 'trajectory' but the shipped policy:UserWarning"
)

# the presets' own filters stay on (MICRO switches them off for the loop tests)
SHAPE = [o for o in MICRO if not o.startswith(("algorithm.filters", "algorithm.group_filter"))]
TRL = [
    *SHAPE,
    "rollout.layout=trajectory",
    "rollout.tasks_per_step=4",
    "actor.mini_batch_size=12",
    "actor.micro_batch_size=12",
]


@pytest.fixture(scope="module")
def policy():
    """The shipped household policy: its episodes are well-formed enough that the Dr.BoT
    filters mask some rows and keep others (the tiny test model writes only noise)."""
    return starting_policy_dir("household")


# The docs/INTEGRATIONS.md example at CI size: 2 RL steps of 2 tasks x 4 episodes, 8 turns at
# most (the household's 20 take minutes on a CPU), a checkpoint after every RL step.
EXAMPLE = [
    "env.name=household",
    "rollout.layout=trajectory",
    "steps=2",
    "rollout.tasks_per_step=2",
    "rollout.max_turns=8",
    "actor.mini_batch_size=8",
    "actor.micro_batch_size=8",
    "checkpoint.every=1",
    "checkpoint.keep=1",
]


@pytest.fixture(scope="module")
def trajectory_policy():
    """The household policy cold-started in the trajectory layout: the example's start."""
    return starting_policy_dir("household", layout="trajectory")


def trl_config(preset, *extra):
    return load_config(preset, [*TRL, *extra])


def trl_inputs(rows, signal, pad_id):
    """The tensors TRL's _generate_and_score_completions hands to _compute_loss."""
    prompts = [torch.tensor(p) for p in rows.prompt_ids]
    completions = [torch.tensor(c) for c in rows.completion_ids]
    completion_ids = pad(completions, padding_value=pad_id, padding_side="right")
    width = completion_ids.shape[1]
    return {
        "prompt_ids": pad(prompts, padding_value=pad_id, padding_side="left"),
        "prompt_mask": pad([torch.ones_like(p) for p in prompts], padding_value=0, padding_side="left"),
        "completion_ids": completion_ids,
        "completion_mask": pad(
            [torch.ones_like(c) for c in completions], padding_value=0, padding_side="right"
        ),
        "advantages": signal.advantages[:, :width],
        "old_per_token_logps": signal.old_log_prob[:, :width],
        "spear_mask": signal.loss_mask[:, :width],
        "spear_kept": torch.as_tensor(signal.kept),
    }


def grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("preset", ["grpo", "drbot", "spear"])
def test_trl_loss_and_gradients_equal_our_trainer(preset, policy, tmp_path):
    config = trl_config(preset, "seed=1")  # seed 1: one response runs past its 24 tokens
    model, tokenizer = load_model_and_tokenizer(policy)
    ours = Trainer(config, model, tokenizer, tmp_path / "ours")
    raw = ours.rollout(1)
    step_batch, _ = ours.prepare(1, {})  # plays the same episodes again (seeded by step)

    # our trainer: the update's micro-batch objective on the prepared batch
    update = step_batch.update.slice(0, len(step_batch.update))
    settings = ours.method.loss_settings(replay=False)
    model.zero_grad()
    log_prob, entropy = response_log_probs(model, update, temperature=settings.temperature, with_entropy=True)
    ours_loss, _, _ = micro_batch_objective(
        log_prob,
        entropy,
        old_log_prob=update.old_log_prob,
        advantages=update.advantages,
        response_mask=update.response_mask,
        loss=settings,
        generator=torch.Generator().manual_seed(step_seed(config["seed"], 1, 3)),
    )
    ours_loss.backward()
    ours_grads = grads(model)

    # the TRL path on the same rollout
    trl_model = copy.deepcopy(model)
    trl_model.zero_grad()
    trainer = SpearGRPOTrainer(trl_model, tokenizer, config, args=spear_grpo_config(config, tmp_path / "trl"))
    slots = config["rollout"]["tasks_per_step"] * config["rollout"]["group_size"]
    signal = step_signal(trainer.method, raw, slots, 1)
    inputs = trl_inputs(
        trl_rows(raw, slots, eos_token_id=tokenizer.eos_token_id), signal, tokenizer.pad_token_id
    )
    trainer.current_gradient_accumulation_steps = 1
    trainer._loss_generator = torch.Generator().manual_seed(step_seed(config["seed"], 1, 3))
    trl_loss = trainer._compute_loss(trl_model, inputs)
    trl_loss.backward()

    if preset != "grpo":  # some rows filtered, some groups dropped: the TRL rows stay, masked
        assert signal.kept.sum() < slots and signal.metrics["filter/any"] > 0
    assert int(signal.kept.sum()) == len(step_batch.rollout)
    # round-off: TRL's forward takes no position_ids, so a left-padded prompt sits at shifted
    # RoPE positions (the same attention in exact arithmetic; ~1e-4 in float32 log-probs)
    torch.testing.assert_close(trl_loss.detach(), ours_loss.detach(), rtol=3e-4, atol=1e-7)
    trl_grads = grads(trl_model)
    assert trl_grads.keys() == ours_grads.keys()
    for name, g in ours_grads.items():  # relative error of each parameter's gradient
        error = float((trl_grads[name] - g).norm() / g.norm().clamp(min=1e-12))
        assert error < 1e-3, f"{name}: relative gradient error {error:.2e}"
    assert any(float(g.abs().max()) > 0 for g in ours_grads.values())


@pytest.mark.parametrize("weight_at", ["loss", "clipped_gradient"])
def test_trl_spear_run_fills_and_replays_the_buffer(policy, tmp_path, weight_at):
    # 4 steps: the group filter keeps 9 of a step's 12 rows and then 8 (a power of two, spec
    # 3.7), so the buffer first holds enough rows to replay at step 4
    config = trl_config("spear", "steps=4", f"sil.weight_at={weight_at}")
    model, tokenizer = load_model_and_tokenizer(policy)
    trainer = SpearGRPOTrainer(model, tokenizer, config, args=spear_grpo_config(config, tmp_path))
    trainer.train()
    history = trainer.state.log_history
    assert trainer.state.global_step == 4 * trainer.optimizer_steps_per_rl_step
    fired = [h.get("spear/sil/fired", 0.0) for h in history]
    assert max(fired) == 1.0, history
    replays = [h for h in history if "spear/sil/grad_norm" in h]
    assert replays, "no replay optimizer step ran"
    # lambda_sil on the loss is clipped away with it; on the clipped gradient it scales the step
    clip = config["actor"]["grad_clip"]
    for h in replays:  # one log entry per RL step: its lambda_sil weighted its replay
        scale = h["spear/schedule/lambda_sil"] if weight_at == "clipped_gradient" else 1.0
        expected = scale * min(h["spear/sil/grad_norm"], clip)
        assert h["spear/sil/grad_norm_applied"] == pytest.approx(expected, rel=1e-6)
    assert max(h.get("spear/sil/buffer_rows", 0.0) for h in history) > 0
    assert all(np.isfinite(h["spear/actor/pg_loss"]) for h in history if "spear/actor/pg_loss" in h)
    tool = [h["spear/schedule/lambda_tool"] for h in history if "spear/schedule/lambda_tool" in h]
    assert tool == sorted(tool, reverse=True) and tool[0] > tool[-1]


def test_trl_refuses_settings_that_change_the_method(base_model, tmp_path):
    model, tokenizer = load_model_and_tokenizer(base_model)
    turn = load_config("spear", SHAPE)
    with pytest.raises(IntegrationError, match=r"rollout\.layout must be 'trajectory'"):
        SpearGRPOTrainer(model, tokenizer, turn, args=spear_grpo_config(turn, tmp_path))
    config = trl_config("spear")
    with pytest.raises(IntegrationError, match="temperature"):
        SpearGRPOTrainer(model, tokenizer, config, args=spear_grpo_config(config, tmp_path, temperature=1.0))


def test_task_prompts_round_trip_and_bad_prompts_are_named():
    config = trl_config("grpo")
    prompts = task_dataset(config)["prompt"][:2]
    repeated = [p for p in prompts for _ in range(3)]
    assert task_seeds(repeated, 3) == [int(p.split()[1]) for p in prompts]
    with pytest.raises(IntegrationError, match="task prompts"):
        task_seeds(["What is 2+2?"] * 3, 3)
    with pytest.raises(IntegrationError, match="mixes prompts"):
        task_seeds([prompts[0], prompts[0], prompts[1]], 3)


def test_spear_itself_never_imports_trl():
    code = "import sys, spear, spear.cli, spear.trainer.run; assert 'trl' not in sys.modules, 'trl imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_example_plays_well_formed_episodes_and_keeps_rows_to_learn(
    trajectory_policy, tmp_path
):
    """What a few steps can show. From the turn-layout policy the same run had 84-87% format
    errors and 97% of the rows filtered (loss 0); docs/INTEGRATIONS.md has the numbers."""
    config = load_config("spear", EXAMPLE)
    model, tokenizer = load_model_and_tokenizer(trajectory_policy)
    out = tmp_path / "trl"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = SpearGRPOTrainer(model, tokenizer, config, args=spear_grpo_config(config, out))
    assert not [w for w in caught if "rollout." in str(w.message)], "the start's layout should match"
    trainer.train()
    steps = [h for h in trainer.state.log_history if "spear/rollout/format_error_rate" in h]
    assert len(steps) == 2
    for h in steps:
        assert h["spear/rollout/format_error_rate"] < 0.05, h
        assert h["spear/rollout/rows_in_loss"] > 0, h
    assert any(abs(h.get("spear/actor/pg_loss", 0.0)) > 0 for h in trainer.state.log_history)

    # checkpoints every RL step, the newest kept, each with the replay buffer and the settings
    last = f"checkpoint-{2 * trainer.optimizer_steps_per_rl_step}"
    assert [p.name for p in out.glob("checkpoint-*")] == [last]
    restored = ReplayBuffer(ReplayConfig(**trainer.method.buffer_config()))
    restored.load_state_dict(torch.load(out / last / BUFFER_FILE, weights_only=False))
    assert [step for step, _ in restored.baseline_means] == [1, 2]  # both steps stored their rows
    for (_, a), (_, b) in zip(restored.baseline_means, trainer.buffer.baseline_means, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(restored) == len(trainer.buffer)
    assert (out / last / RUN_SETTINGS).is_file()

    # save_model: spear_run.yaml beside the weights, the settings spear eval plays with
    final = tmp_path / "final_model"
    trainer.save_model(str(final))
    assert (final / "model.safetensors").is_file()
    settings = yaml.safe_load((final / RUN_SETTINGS).read_text())
    assert settings == {
        "env": {"name": "household", "options": config["env"]["options"]},
        "rollout": config["rollout"],
    }
    assert settings["rollout"]["layout"] == "trajectory" and settings["rollout"]["max_turns"] == 8


def test_a_policy_cold_started_in_another_layout_warns_as_spear_train_does(
    policy, trajectory_policy, tmp_path
):
    config = load_config("spear", EXAMPLE)
    expected = prompt_differences(read_manifest(policy), config)  # what spear train prints
    assert len(expected) == 1 and expected[0].startswith("rollout.layout is 'trajectory'")
    model, tokenizer = load_model_and_tokenizer(policy)
    with pytest.warns(UserWarning) as record:
        SpearGRPOTrainer(model, tokenizer, config, args=spear_grpo_config(config, tmp_path / "a"))
    assert [str(w.message) for w in record if str(w.message).startswith("rollout.")] == expected
    # a model saved by a run records its settings in spear_run.yaml only
    saved = tmp_path / "saved"
    shutil.copytree(policy, saved)
    (saved / MANIFEST).unlink()
    with pytest.warns(UserWarning, match="rollout.layout is 'trajectory'"):
        assert warn_prompt_differences(str(saved), config) == expected
    assert warn_prompt_differences(trajectory_policy, config) == []
    (saved / RUN_SETTINGS).unlink()
    assert warn_prompt_differences(saved, config) == []  # nothing recorded: nothing to compare


def test_checkpoints_follow_the_spear_config(tmp_path):
    # checkpoint.every 10, keep 2
    config = load_config("spear", ["env.name=household", "rollout.layout=trajectory"])
    args = spear_grpo_config(config, tmp_path)
    per_rl_step = args.steps_per_generation * args.num_iterations // args.gradient_accumulation_steps
    assert (args.save_strategy, args.save_steps, args.save_total_limit) == ("steps", 10 * per_rl_step, 2)
    off = spear_grpo_config(
        load_config("spear", ["env.name=household", "rollout.layout=trajectory", "checkpoint.every=0"]),
        tmp_path,
    )
    assert off.save_strategy == "no"
