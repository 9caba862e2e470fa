"""LoRA through peft: RL updates only the adapter; the final model is saved merged and loads alone."""

import pytest
import torch

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.embedded import build_embedded
from spear.trainer.run import train

pytest.importorskip("peft")

OPTIONS = "{num_receptacles: 4, num_distractors: 0, max_turns: 2}"


def test_lora_run_trains_only_the_adapter_and_saves_a_merged_model(tmp_path):
    base = tmp_path / "base"
    build_embedded(
        base,
        "household",
        {"num_receptacles": 4, "num_distractors": 0, "max_turns": 2},
        {
            "vocab_size": 300,
            "hidden_size": 32,
            "num_layers": 1,
            "num_heads": 2,
            "num_kv_heads": 1,
            "intermediate_size": 64,
        },
    )
    config = load_config(
        "grpo",
        [
            f"model.path={base}",
            "model.lora.enabled=true",
            "model.lora.r=4",
            "actor.lr=0.05",
            "steps=2",
            "env.name=household",
            f"env.options={OPTIONS}",
            "rollout.tasks_per_step=2",
            "rollout.group_size=4",
            "rollout.max_new_tokens=8",
            "rollout.temperature=2.0",
            "eval.every=0",
            "eval.final_episodes=0",
            "checkpoint.every=0",
            "logging.tensorboard=false",
            "logging.plots=false",
        ],
    )
    train(config, run_dir=tmp_path / "run", quiet=True)

    before, _ = load_model_and_tokenizer(base)
    after, _ = load_model_and_tokenizer(tmp_path / "run" / "final_model")
    assert (tmp_path / "run" / "final_model_adapter" / "adapter_config.json").is_file()
    changed = {
        name
        for name, value in after.state_dict().items()
        if not torch.equal(value, before.state_dict()[name])
    }
    # LoRA targets q/k/v/o: merged deltas appear there and nowhere else
    assert changed, "the adapter did not learn"
    assert all(
        any(f"{m}.weight" in name for m in ("q_proj", "k_proj", "v_proj", "o_proj")) for name in changed
    )
