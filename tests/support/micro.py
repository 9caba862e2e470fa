"""The micro config the trainer tests share, and a tiny cold-started model (fixture ``base_model``,
registered in conftest.py)."""

import pytest

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.config import load_config
from spear.trainer.loop import Trainer
from spear.trainer.run import setup_model

MICRO = [
    "steps=4",
    "env.name=household",
    "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}",
    "rollout.tasks_per_step=2",
    "rollout.group_size=3",
    "rollout.max_new_tokens=24",
    "rollout.history_length=1",
    "actor.mini_batch_size=16",
    "actor.micro_batch_size=8",
    "eval.every=2",
    "eval.episodes=2",
    "eval.final_episodes=3",
    "checkpoint.every=2",
    "sil.buffer.trigger=min_samples",
    "sil.buffer.min_samples=2",
    "sil.buffer.capacity=8",
    "sft.episodes=4",
    "sft.epochs=1",
    "algorithm.filters=[]",
    "algorithm.group_filter.ratio=1.0",
]


TINY_MODEL = [  # the embedded model at test size: builds and cold-starts in seconds
    "model.embedded.vocab_size=400",
    "model.embedded.hidden_size=32",
    "model.embedded.num_layers=2",
    "model.embedded.num_heads=2",
    "model.embedded.num_kv_heads=1",
    "model.embedded.intermediate_size=64",
]


@pytest.fixture(scope="session")
def base_model(tmp_path_factory):
    """A tiny embedded model for household with a short cold start (also usable on parity)."""
    path = tmp_path_factory.mktemp("model")
    config = load_config(
        "spear", [*MICRO, *TINY_MODEL, "model.init=scratch", "sft.episodes=8", "sft.epochs=1"]
    )
    setup_model(config, path, quiet=True)
    return path / "sft_model"


def micro_config(*extra):
    return load_config("spear", [*MICRO, *extra])


def make_trainer(base_model, run_dir, *extra):
    config = micro_config(*extra)
    config["run_dir"] = str(run_dir)
    model, tokenizer = load_model_and_tokenizer(base_model)
    return Trainer(config, model, tokenizer, run_dir)
