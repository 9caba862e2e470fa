"""Checks that need a CUDA GPU (skipped elsewhere; benchmarks/gpu_check.sh runs them).

Our trainer and the TRL integration each take RL steps of the spear preset on the GPU with
bf16 autocast (model.dtype=auto): finite losses, parameters on the GPU and changed."""

import pytest
import torch
from micro import MICRO

from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import starting_policy_dir
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer
from spear.trainer.run import make_accelerator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TRAJECTORY = ["rollout.layout=trajectory", "rollout.tasks_per_step=4", "actor.mini_batch_size=12"]


def snapshot(model):
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()}


def moved(model, before):
    return any(not torch.equal(p.detach().float().cpu(), before[n]) for n, p in model.named_parameters())


def test_our_trainer_steps_on_the_gpu_in_bf16(tmp_path):
    config = load_config("spear", [*MICRO, "steps=2"])
    model, tokenizer = load_model_and_tokenizer(starting_policy_dir("household"))
    accelerator = make_accelerator(config)
    assert accelerator.mixed_precision == "bf16"
    trainer = Trainer(config, model, tokenizer, tmp_path, accelerator=accelerator)
    before = snapshot(trainer.model)
    for step in (1, 2):
        metrics = trainer.train_step(step)
        assert torch.isfinite(torch.tensor(metrics["actor/pg_loss"]))
    assert next(trainer.model.parameters()).is_cuda
    assert moved(trainer.model, before)


def test_trl_integration_steps_on_the_gpu_in_bf16(tmp_path):
    trl = pytest.importorskip("spear.integrations.trl")
    config = load_config("spear", [*MICRO, *TRAJECTORY, "actor.micro_batch_size=12", "steps=2"])
    model, tokenizer = load_model_and_tokenizer(starting_policy_dir("household"))
    before = snapshot(model)
    args = trl.spear_grpo_config(config, tmp_path)
    assert args.bf16
    trainer = trl.SpearGRPOTrainer(model, tokenizer, config, args=args)
    trainer.train()
    assert next(trainer.model.parameters()).is_cuda
    assert moved(trainer.model, before)
    losses = [h["spear/actor/pg_loss"] for h in trainer.state.log_history if "spear/actor/pg_loss" in h]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
