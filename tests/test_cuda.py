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


@pytest.mark.parametrize("decode", ["static", "compiled"])
def test_the_fixed_shape_decoders_sample_the_eager_tokens_on_the_gpu(decode):
    """On a GPU the compiled decoder replays the decode step as a CUDA graph; from the same
    weights and seed it must sample the eager decoder's tokens (log-probs to 1e-4: fp32
    kernels chosen per shape may sum in another order)."""
    from spear.rollout.generation import generate

    model, tokenizer = load_model_and_tokenizer(starting_policy_dir("household"))
    model = model.cuda()
    prompts = [tokenizer.encode("You are in the middle of a room. " * (3 + i % 5)) for i in range(12)]
    budgets = [32, 5, 17, 32, 1, 9, 25, 32, 3, 30, 12, 20]

    def run(name):
        generator = torch.Generator(device="cuda").manual_seed(5)
        return generate(
            model,
            prompts,
            max_new_tokens=budgets,
            pad_token_id=tokenizer.pad_token_id,
            temperature=0.7,
            generator=generator,
            decode=name,
        )

    eager = run("eager")
    for _ in range(2):  # the second call replays the graphs the first one captured
        fixed = run(decode)
        for e, f in zip(eager, fixed, strict=True):
            assert f.token_ids == e.token_ids
            torch.testing.assert_close(torch.tensor(f.logprobs), torch.tensor(e.logprobs), rtol=0, atol=1e-4)
