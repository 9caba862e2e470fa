"""``model.gradient_checkpointing``: recompute activations in the backward pass, same training."""

import warnings

import torch
from micro import MICRO

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.run import setup_model, train


def tiny_config(base_model, checkpointing: bool) -> dict:
    return load_config(
        "grpo",
        [
            *MICRO,
            f"model.path={base_model}",
            f"model.gradient_checkpointing={str(checkpointing).lower()}",
            "steps=2",
            "actor.lr=0.05",
            "eval.every=0",
            "eval.final_episodes=0",
            "checkpoint.every=0",
            "logging.tensorboard=false",
            "logging.plots=false",
        ],
    )


def trained_weights(base_model, run_dir, checkpointing: bool) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        # transformers 5 warns on the old method names and drops them in v6: we must not use them.
        warnings.filterwarnings("error", message=".*gradient_checkpointing.*", category=FutureWarning)
        train(tiny_config(base_model, checkpointing), run_dir=run_dir, quiet=True)
    model, _ = load_model_and_tokenizer(run_dir / "final_model")
    return model.state_dict()


def test_checkpointed_training_gives_the_same_weights(base_model, tmp_path):
    plain = trained_weights(base_model, tmp_path / "plain", checkpointing=False)
    checkpointed = trained_weights(base_model, tmp_path / "checkpointed", checkpointing=True)
    before, _ = load_model_and_tokenizer(base_model)
    assert any(not torch.equal(plain[k], v) for k, v in before.state_dict().items())  # it trained
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, rtol=0, atol=1e-6, msg=name)


def test_the_switch_turns_checkpointing_on_in_the_decoder_layers(base_model, tmp_path):
    for checkpointing in (False, True):
        model, _ = setup_model(
            tiny_config(base_model, checkpointing), tmp_path / f"{checkpointing}", quiet=True
        )
        flags = [m.gradient_checkpointing for m in model.modules() if hasattr(m, "gradient_checkpointing")]
        assert flags and all(flag == checkpointing for flag in flags)
