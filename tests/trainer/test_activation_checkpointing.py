"""``model.gradient_checkpointing``: recompute activations in the backward pass, same training."""

import warnings

import torch

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.embedded import build_embedded
from spear.trainer.run import setup_model, train

OPTIONS = {"num_receptacles": 4, "num_distractors": 0, "max_turns": 2}
TINY = {
    "vocab_size": 300,
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "num_kv_heads": 1,
    "intermediate_size": 64,
}


def tiny_config(base, checkpointing: bool) -> dict:
    return load_config(
        "grpo",
        [
            f"model.path={base}",
            f"model.gradient_checkpointing={str(checkpointing).lower()}",
            "actor.lr=0.05",
            "steps=2",
            "env.options={num_receptacles: 4, num_distractors: 0, max_turns: 2}",
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


def trained_weights(tmp_path, base, checkpointing: bool) -> dict[str, torch.Tensor]:
    config = tiny_config(base, checkpointing)
    run_dir = tmp_path / f"run-{checkpointing}"
    with warnings.catch_warnings():
        # transformers 5 warns on the old method names and drops them in v6: we must not use them.
        warnings.filterwarnings("error", message=".*gradient_checkpointing.*", category=FutureWarning)
        train(config, run_dir=run_dir, quiet=True)
    model, _ = load_model_and_tokenizer(run_dir / "final_model")
    return model.state_dict()


def test_checkpointed_training_gives_the_same_weights(tmp_path):
    base = tmp_path / "base"
    build_embedded(base, "household", OPTIONS, TINY)
    plain = trained_weights(tmp_path, base, checkpointing=False)
    checkpointed = trained_weights(tmp_path, base, checkpointing=True)
    before, _ = load_model_and_tokenizer(base)
    assert any(not torch.equal(plain[k], v) for k, v in before.state_dict().items())  # it trained
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, rtol=0, atol=1e-6, msg=name)


def test_the_switch_turns_checkpointing_on_in_the_decoder_layers(tmp_path):
    base = tmp_path / "base"
    build_embedded(base, "household", OPTIONS, TINY)
    for checkpointing in (False, True):
        model, _ = setup_model(
            tiny_config(base, checkpointing), tmp_path / f"setup-{checkpointing}", quiet=True
        )
        flags = [m.gradient_checkpointing for m in model.modules() if hasattr(m, "gradient_checkpointing")]
        assert flags and all(flag == checkpointing for flag in flags)
