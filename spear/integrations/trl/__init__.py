"""SPEAR inside TRL's ``GRPOTrainer`` (``pip install 'spear-rl[trl]'``; docs/INTEGRATIONS.md).

from spear.integrations.trl import SpearGRPOTrainer, spear_grpo_config
from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import starting_policy_dir
from spear.trainer.config import load_config

config = load_config("spear", ["rollout.layout=trajectory"])
model, tokenizer = load_model_and_tokenizer(starting_policy_dir("household", layout="trajectory"))
trainer = SpearGRPOTrainer(model, tokenizer, config, args=spear_grpo_config(config, "runs/trl"))
trainer.train()
trainer.save_model("runs/trl/final_model")  # with spear_run.yaml: spear eval plays its settings
"""

try:
    import trl  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "spear.integrations.trl needs TRL; install the extra: pip install 'spear-rl[trl]'"
    ) from exc

from spear.integrations.trl.rows import StepSignal, TrlRows, step_signal, trl_rows
from spear.integrations.trl.trainer import (
    IntegrationError,
    SpearGRPOTrainer,
    check_compatible,
    recorded_rollout,
    shaped_reward,
    spear_grpo_config,
    task_dataset,
    task_seeds,
    warn_prompt_differences,
)

__all__ = [
    "IntegrationError",
    "SpearGRPOTrainer",
    "StepSignal",
    "TrlRows",
    "check_compatible",
    "recorded_rollout",
    "shaped_reward",
    "spear_grpo_config",
    "step_signal",
    "task_dataset",
    "task_seeds",
    "trl_rows",
    "warn_prompt_differences",
]
