"""SPEAR inside TRL: a ``GRPOTrainer`` subclass (spec 2.2 on TRL's engine; docs/DESIGN.md).

TRL runs the engine (accelerate / DeepSpeed, the optimizer and scheduler, gradient
accumulation, checkpoints, logging); spear supplies the method through three overrides
and one callback, each a thin call into :class:`spear.trainer.method.Method` and
:func:`spear.trainer.actor.micro_batch_objective`:

* ``rollout_func``: spear's multi-turn :class:`~spear.rollout.engine.RolloutEngine` plays
  the environment (trajectory layout: one sequence per episode, ``env_mask`` 0 on the
  observation tokens) and returns TRL's ``prompt_ids / completion_ids / logprobs``;
* ``_generate_and_score_completions``: after TRL's own bookkeeping, replace its advantages
  with spear's (shaped rewards with the tool bonus of the RL step, Dr.BoT response and
  group filters, GRPO), set the behaviour log-probs to the sampler's, and feed the SIL
  buffer (sample first, then store: a replay batch holds data of earlier steps only);
* ``_compute_loss``: spear's policy loss (vanilla / Clip-Cov / KL-Cov, the configured
  aggregation, the entropy bonus) on TRL's log-probs;
* a callback after the last optimizer step of each RL step: the SIL replay update, its
  own optimizer steps weighted by lambda_sil(t), with the replay Clip-Cov parameters.

TRL's checkpoints (every ``checkpoint.every`` RL steps) also hold the replay buffer, and
``save_model`` writes ``spear_run.yaml`` beside the weights, so ``spear eval`` plays a
saved model with the settings it was trained with.

One RL step = one TRL generation batch of ``B x G`` episodes, followed by
``B G / mini_batch_size x ppo_epochs`` optimizer steps (TRL's ``global_step`` counts those).
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from datasets import Dataset
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from spear.algo.replay import ReplayBuffer, ReplayConfig
from spear.envs import make
from spear.integrations.trl.rows import fit_width, step_signal, trl_rows
from spear.models.shipped import MANIFEST
from spear.trainer.actor import LossSettings, micro_batch_objective
from spear.trainer.loop import make_engine, save_run_settings
from spear.trainer.method import Method, step_seed
from spear.trainer.run import prompt_differences, read_run_settings

TASK_PREFIX = "task "
BUFFER_FILE = "spear_replay_buffer.pt"


class IntegrationError(ValueError):
    """A spear config and a ``GRPOConfig`` that cannot run together (the message says why)."""


# ---------------------------------------------------------------------- configuration
def _batch_shape(config: dict[str, Any]) -> tuple[int, int, int]:
    """Rows per RL step, per optimizer step and per forward pass (``B G``, mini, micro)."""
    r, a = config["rollout"], config["actor"]
    rows = r["tasks_per_step"] * r["group_size"]
    mini = min(a["mini_batch_size"], rows)
    micro = min(a["micro_batch_size"], mini)
    if rows % mini or mini % micro:
        raise IntegrationError(
            f"TRL needs rows per step ({rows} = tasks_per_step x group_size) to be a multiple of "
            f"actor.mini_batch_size ({mini}) and that of actor.micro_batch_size ({micro})"
        )
    return rows, mini, micro


def spear_grpo_config(config: dict[str, Any], output_dir: str | Path, **overrides: Any) -> GRPOConfig:
    """The ``GRPOConfig`` that runs ``config``'s method and batch shape on TRL.

    Rows per forward pass, per optimizer step and per RL step, PPO epochs, the optimizer
    (AdamW, constant lr), the rollout temperature and the clip range come from the spear
    config; so do the checkpoints: every ``checkpoint.every`` RL steps (0: none), the newest
    ``checkpoint.keep`` kept, each in ``output_dir/checkpoint-<optimizer step>`` with the
    replay buffer (``spear_replay_buffer.pt``). ``overrides`` set anything else (``bf16``,
    ``report_to``, ``logging_steps``, ``save_steps``, ...). Overriding a field the method
    depends on is refused by :class:`SpearGRPOTrainer`.
    """
    rows, mini, micro = _batch_shape(config)
    r, a = config["rollout"], config["actor"]
    every = config["checkpoint"]["every"]
    optimizer_steps = (rows // mini) * a["ppo_epochs"]  # per RL step: TRL's save_steps counts these
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_generations": r["group_size"],
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": mini // micro,
        "steps_per_generation": rows // micro,
        "num_iterations": a["ppo_epochs"],
        "max_steps": config["steps"] * (rows // mini) * a["ppo_epochs"],
        "learning_rate": a["lr"],
        "weight_decay": a["weight_decay"],
        "max_grad_norm": a["grad_clip"],
        "lr_scheduler_type": "constant",
        "temperature": r["temperature"],
        "top_p": r["top_p"],
        "max_completion_length": r["max_new_tokens"],
        "beta": 0.0,
        "epsilon": a["clip_low"],
        "epsilon_high": a["clip_high"],
        "scale_rewards": "group" if config["algorithm"]["normalize_by_std"] else "none",
        "shuffle_dataset": False,
        "seed": config["seed"],
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "steps" if every > 0 else "no",
        "save_steps": max(every, 1) * optimizer_steps,
        "save_total_limit": max(int(config["checkpoint"]["keep"]), 1),  # as our trainer prunes
        "use_vllm": False,
        "use_cpu": not torch.cuda.is_available(),
        # as spear's model.dtype=auto: bf16 on a GPU, fp32 on CPU (TRL's default is bf16 everywhere)
        "bf16": torch.cuda.is_available(),
    }
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def check_compatible(config: dict[str, Any], args: GRPOConfig) -> None:
    """Refuse settings under which TRL would not run ``config``'s method (one message each)."""
    r, a = config["rollout"], config["actor"]
    rows, mini, micro = _batch_shape(config)
    problems = []
    if r["layout"] != "trajectory":
        problems.append("rollout.layout must be 'trajectory' (TRL trains one sequence per episode)")
    if config["algorithm"]["estimator"] != "grpo":
        problems.append("algorithm.estimator must be 'grpo' (GiGPO needs per-turn rows, rollout.layout=turn)")
    if args.num_generations != r["group_size"]:
        problems.append(f"num_generations ({args.num_generations}) != rollout.group_size ({r['group_size']})")
    if args.temperature != r["temperature"] or args.top_p != r["top_p"]:
        problems.append(
            f"temperature/top_p ({args.temperature}/{args.top_p}) != rollout's "
            f"({r['temperature']}/{r['top_p']}): the policy trained is the one sampled"
        )
    if args.beta != 0.0:
        problems.append("beta must be 0 (SPEAR's presets use no KL to a reference model)")
    if args.use_vllm:
        problems.append(
            "use_vllm is not supported: spear's multi-turn engine generates with the policy module "
            "(docs/INTEGRATIONS.md)"
        )
    shape = (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.num_iterations)
    if shape != (micro, mini // micro, a["ppo_epochs"]):
        problems.append(
            f"(per_device_train_batch_size, gradient_accumulation_steps, num_iterations) = {shape}, "
            f"but the config asks for {(micro, mini // micro, a['ppo_epochs'])}"
        )
    if args.generation_batch_size != rows:
        problems.append(
            f"generation_batch_size ({args.generation_batch_size}) != tasks_per_step x group_size ({rows})"
        )
    if problems:
        raise IntegrationError("spear config and GRPOConfig disagree: " + "; ".join(problems))


def recorded_rollout(model: Any) -> dict[str, Any] | None:
    """The rollout settings the folder ``model`` was loaded from records, or None.

    A shipped policy's ``manifest.json`` records its cold start; a model saved by spear's
    trainer or :meth:`SpearGRPOTrainer.save_model` records its run in ``spear_run.yaml``.
    ``model`` is a path or a model loaded by ``from_pretrained`` (its ``name_or_path``).
    """
    name = model if isinstance(model, (str, Path)) else getattr(model, "name_or_path", None)
    folder = Path(name) if name else None
    if folder is None or not folder.is_dir():
        return None  # a model built in memory or named by a Hub id records nothing here
    try:
        if (folder / MANIFEST).is_file():
            rollout = json.loads((folder / MANIFEST).read_text())["config"]["rollout"]
        else:  # {} without spear_run.yaml; ConfigError (a ValueError) when it is no mapping
            rollout = read_run_settings(folder).get("rollout")
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None  # unreadable records: verifying or loading the model reports real damage
    return rollout if isinstance(rollout, dict) else None


def warn_prompt_differences(model: Any, config: dict[str, Any]) -> list[str]:
    """Warn (``UserWarning``) about each prompt setting (the layout among them) in which
    ``config`` differs from what ``model`` was trained on: the warnings ``spear train`` prints
    for its starting policy (:func:`spear.trainer.run.prompt_differences`). Returns them."""
    rollout = recorded_rollout(model)
    if rollout is None:
        return []
    differences = prompt_differences({"config": {"rollout": rollout}}, config)
    for difference in differences:
        warnings.warn(difference, UserWarning, stacklevel=3)
    return differences


def task_dataset(config: dict[str, Any]) -> Dataset:
    """The task seeds our trainer draws, step by step, as TRL prompts ``"task <seed>"``.

    With ``shuffle_dataset=False`` TRL hands them out in this order, so both engines play
    the same tasks at the same RL step.
    """
    prompts = []
    for step in range(1, config["steps"] + 1):
        rng = np.random.default_rng(step_seed(config["seed"], step, 1))
        seeds = rng.integers(0, 2**31 - 1, size=config["rollout"]["tasks_per_step"])
        prompts += [f"{TASK_PREFIX}{int(s)}" for s in seeds]
    return Dataset.from_dict({"prompt": prompts})


def task_seeds(prompts: list[Any], group_size: int) -> list[int]:
    """The seed of each group of ``group_size`` identical prompts (TRL repeats each prompt)."""
    if len(prompts) % group_size:
        raise IntegrationError(f"{len(prompts)} prompts are not whole groups of {group_size}")
    seeds = []
    for start in range(0, len(prompts), group_size):
        group = prompts[start : start + group_size]
        first = group[0]
        seed = first[len(TASK_PREFIX) :] if isinstance(first, str) and first.startswith(TASK_PREFIX) else ""
        if not seed.isdigit():
            raise IntegrationError(
                f"SpearGRPOTrainer's prompts must be task prompts '{TASK_PREFIX}<seed>' "
                f"(spear.integrations.trl.task_dataset); got {first!r}"
            )
        if any(p != first for p in group):
            raise IntegrationError(f"a group of {group_size} rollouts mixes prompts: {group}")
        seeds.append(int(seed))
    return seeds


def shaped_reward(prompts, completions, spear_score, **kwargs) -> list[float]:
    """TRL reward function: the shaped score spear computed in the rollout (for TRL's logs;
    the advantages TRL derives from it are replaced by spear's)."""
    return [float(s) for s in spear_score]


def _rollout(prompts: list[Any], trainer: SpearGRPOTrainer) -> dict[str, list]:
    return trainer.spear_rollout(prompts)


# ---------------------------------------------------------------------- the trainer
class _ReplayStep(TrainerCallback):
    """Runs the SIL replay update after the last on-policy optimizer step of each RL step."""

    def __init__(self, trainer: SpearGRPOTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.trainer.optimizer_steps_per_rl_step == 0:
            self.trainer.replay_update()
        return control


class SpearGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` running a spear preset on a spear environment.

    Args:
        model: a causal LM (or its path, as TRL accepts). When its folder records the prompt
            settings it was trained with (a shipped policy's manifest, a saved run's
            ``spear_run.yaml``), each that ``config`` changes, the layout among them, is
            warned about as ``spear train`` does (:func:`warn_prompt_differences`).
        tokenizer: its tokenizer (with a prefix-preserving chat template).
        config: a spear config (:func:`spear.trainer.config.load_config`) with
            ``rollout.layout=trajectory``: the method, the environment and the batch shape.
        args: TRL settings; default :func:`spear_grpo_config` with ``output_dir`` under
            ``config["run_dir"]`` (or ``runs/trl``). Fields the method depends on must agree
            with ``config`` (:func:`check_compatible`).
        train_dataset: default :func:`task_dataset`.
        callbacks, **kwargs: passed to ``GRPOTrainer`` (``peft_config``, ``optimizers``, ...).
    """

    def __init__(
        self,
        model,
        tokenizer,
        config: dict[str, Any],
        *,
        args: GRPOConfig | None = None,
        train_dataset: Dataset | None = None,
        callbacks: list[TrainerCallback] | None = None,
        **kwargs: Any,
    ) -> None:
        args = args or spear_grpo_config(config, Path(config.get("run_dir") or "runs/trl"))
        check_compatible(config, args)
        warn_prompt_differences(model, config)
        env = config["env"]
        probe = make(env["name"], **env["options"])
        action_format = probe.action_format
        probe.close()
        self.spear_config = config
        self.method = Method(config, tokenizer, action_format)
        self.buffer = ReplayBuffer(ReplayConfig(**self.method.buffer_config()), seed=config["seed"])
        self._pending_signal = None
        self._pending_replay = None
        self._loss_generator: torch.Generator | None = None
        super().__init__(
            model=model,
            reward_funcs=[shaped_reward],
            args=args,
            train_dataset=train_dataset if train_dataset is not None else task_dataset(config),
            processing_class=tokenizer,
            callbacks=[_ReplayStep(self), *(callbacks or [])],
            rollout_func=_rollout,
            **kwargs,
        )
        self.optimizer_steps_per_rl_step = (
            args.steps_per_generation * args.num_iterations // args.gradient_accumulation_steps
        )
        self.engine = make_engine(
            self.model,
            tokenizer,
            config,
            "train",
            group_size=args.num_generations,
            temperature=args.temperature,
            rank=self.accelerator.process_index,
        )

    # ------------------------------------------------------------------ bookkeeping
    @property
    def rl_step(self) -> int:
        """The RL step (1-based) that the current or next generation batch belongs to."""
        return self.state.global_step // self.optimizer_steps_per_rl_step + 1

    def _log(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if value is not None:
                self._metrics["train"][f"spear/{name}"].append(float(value))

    # ------------------------------------------------------------------ 1 and 4-8
    def spear_rollout(self, prompts: list[Any]) -> dict[str, list]:
        """TRL's ``rollout_func``: play each group's task ``G`` times and score it."""
        group_size = self.args.num_generations
        seeds = task_seeds(prompts, group_size)
        step = self.rl_step
        first_group = self.accelerator.process_index * len(seeds)
        with self.accelerator.autocast():
            batch = self.engine.collect(
                self.spear_config["env"]["name"], seeds, step=step, first_group=first_group
            )
        signal = step_signal(self.method, batch, len(prompts), step)
        self._pending_signal = signal
        self._log({f"rollout/{k}": v for k, v in batch.stats().items()})
        self._log(signal.metrics)
        rows = trl_rows(batch, len(prompts), eos_token_id=self.processing_class.eos_token_id)
        return {**rows.as_dict(), "spear_score": signal.scores.tolist()}

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training or self._pending_signal is None:
            return output
        signal, self._pending_signal = self._pending_signal, None
        step = self.rl_step
        width = output["completion_ids"].shape[1]
        device = output["completion_ids"].device
        output["advantages"] = fit_width(signal.advantages, width).to(device)
        output["spear_mask"] = fit_width(signal.loss_mask, width).to(device)
        output["spear_kept"] = torch.as_tensor(signal.kept, device=device)
        output["old_per_token_logps"] = fit_width(signal.old_log_prob, width).to(device)
        if self.spear_config["actor"]["recompute_old_log_prob"]:
            with torch.no_grad():
                old, _, _ = self._get_per_token_logps_and_entropies(
                    self.model,
                    torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1),
                    torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1),
                    width,
                    batch_size=self.args.per_device_train_batch_size,
                )
            output["old_per_token_logps"] = old * output["spear_mask"]
        self._loss_generator = torch.Generator().manual_seed(step_seed(self.spear_config["seed"], step, 3))
        self._log(
            {
                "schedule/lambda_tool": self.method.lambda_tool(step),
                "schedule/lambda_sil": self.method.lambda_sil(step) if self._sil else 0.0,
            }
        )
        if self._sil:
            self._feed_buffer(signal, step)
        return output

    # ------------------------------------------------------------------ 9, 11-12: the replay buffer
    @property
    def _sil(self) -> bool:
        return bool(self.spear_config["sil"]["enabled"])

    def _feed_buffer(self, signal, step: int) -> None:
        """Draw this step's replay batch (from earlier steps), then store this step's rows."""
        ready = torch.tensor([float(self.buffer.ready())], device=self.accelerator.device)
        everyone_ready = bool(self.accelerator.gather(ready).min() > 0)  # replay steps stay in lockstep
        self._pending_replay = self.buffer.sample() if everyone_ready else None
        if len(signal.live):
            self.method.store(
                self.buffer,
                signal.live,
                scores=signal.live_scores,
                response_mask=signal.live_mask,
                old_log_prob=signal.live_old_log_prob,
                advantages=signal.live_advantages,
                step=step,
            )
        replay = self._pending_replay
        baseline = replay.baseline if replay is not None else None
        self._log(
            {
                "sil/fired": float(replay is not None),
                "sil/replay_rows": float(len(replay) if replay is not None else 0),
                "sil/buffer_rows": float(len(self.buffer)),
                "sil/qualifying_rows": float(self.buffer.num_qualifying()),
                "sil/capacity": float(self.buffer.config.capacity),
                "sil/baseline": baseline[0] if baseline is not None else None,
                "sil/baseline_std": baseline[1] if baseline is not None else None,
            }
        )

    # ------------------------------------------------------------------ 10: the loss
    def spear_objective(
        self,
        log_prob: torch.Tensor,
        entropy: torch.Tensor,
        *,
        old_log_prob: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
        lengths: torch.Tensor,
        replay: bool,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """spear's ``L_pg - c H`` of one micro-batch ``[n, C]``; ``lengths [n]`` are the
        completion lengths of the rows that count (the token-sum-norm aggregation's norm
        under ``actor.sum_norm_length: micro_batch``: the longest kept row, as our trainer)."""
        settings: LossSettings = self.method.loss_settings(replay=replay)
        if settings.norm_length is None and settings.agg_mode == "seq-mean-token-sum-norm":
            settings = replace(settings, norm_length=float(lengths.max()) if len(lengths) else 1.0)
        if not bool(mask.any()):
            return (log_prob * 0.0).sum()  # no token counts; keeps every parameter in the graph
        objective, pg, metrics = micro_batch_objective(
            log_prob,
            entropy,
            old_log_prob=old_log_prob,
            advantages=advantages,
            response_mask=mask,
            loss=settings,
            generator=generator,
        )
        prefix = "sil" if replay else "actor"
        token_entropy = float(entropy.detach()[mask.bool()].mean())
        metrics = {**metrics, "pg_loss": float(pg.detach()), "entropy": token_entropy}
        self._log({f"{prefix}/{k}": v for k, v in metrics.items()})
        return objective

    def _compute_loss(self, model, inputs):
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([inputs["prompt_ids"], completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], completion_mask], dim=1)
        log_prob, entropy, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True
        )
        kept = inputs["spear_kept"].bool()
        objective = self.spear_objective(
            log_prob,
            entropy,
            old_log_prob=inputs["old_per_token_logps"],
            advantages=inputs["advantages"],
            mask=inputs["spear_mask"] * completion_mask,
            lengths=completion_mask.sum(dim=1)[kept],
            replay=False,
            generator=self._loss_generator,
        )
        return objective / self.current_gradient_accumulation_steps

    # ------------------------------------------------------------------ 10: the SIL update
    def replay_update(self) -> None:
        """The SIL update of this RL step: ``lambda_sil(t) x`` spear's loss with the replay
        Clip-Cov settings on the buffered rows (stored behaviour log-probs, recalibrated
        advantages), in mini-batches of TRL's optimizer-step size, each its own optimizer step."""
        replay, self._pending_replay = self._pending_replay, None
        if replay is None:
            return
        step = self.rl_step - 1  # global_step has already moved past this RL step's updates
        weight = self.method.lambda_sil(step)
        # sil.weight_at (docs/DESIGN.md, "Gradient clipping"): on the loss before the shared
        # clip (the official order) or on the clipped gradient, as spear's trainer does
        weight_at = self.spear_config["sil"]["weight_at"]
        loss_weight = weight if weight_at == "loss" else 1.0
        batch = self.method.replay_batch(replay)
        micro = self.args.per_device_train_batch_size
        mini = micro * self.args.gradient_accumulation_steps
        generator = torch.Generator().manual_seed(step_seed(self.spear_config["seed"], step, 4))
        params = [p for p in self.model.parameters() if p.requires_grad]
        device = self.accelerator.device
        self.model_wrapped.train()
        for start in range(0, len(batch), mini):
            stop = min(start + mini, len(batch))
            self.optimizer.zero_grad(set_to_none=True)
            for m in range(start, stop, micro):
                part = batch.slice(m, min(m + micro, stop)).to(device)
                width = part.response_mask.shape[1]
                log_prob, entropy, _ = self._get_per_token_logps_and_entropies(
                    self.model_wrapped, part.input_ids, part.attention_mask, width, compute_entropy=True
                )
                objective = self.spear_objective(
                    log_prob,
                    entropy,
                    old_log_prob=part.old_log_prob,
                    advantages=part.advantages,
                    mask=part.response_mask,
                    lengths=part.attention_mask[:, part.prompt_length :].sum(dim=1),
                    replay=True,
                    generator=generator,
                )
                self.accelerator.backward(loss_weight * objective * (len(part) / (stop - start)))
            limit = self.args.max_grad_norm if self.args.max_grad_norm else float("inf")  # 0: no clip
            grad_norm = self.accelerator.clip_grad_norm_(params, limit)
            if torch.isfinite(torch.as_tensor(grad_norm)):
                applied = min(float(grad_norm), limit)
                if weight_at == "clipped_gradient":  # lambda_sil scales what the clip let through
                    for p in params:
                        if p.grad is not None:
                            p.grad.mul_(weight)
                    applied *= weight
                self.optimizer.step()
                self._log({"sil/grad_norm": float(grad_norm), "sil/grad_norm_applied": applied})
            self.optimizer.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ checkpoints
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """TRL's ``save_model``, plus ``spear_run.yaml`` (the environment and rollout settings)
        beside the weights: ``spear eval --model DIR`` then plays the training settings (layout,
        turn cap, response length), not its defaults. Checkpoints save through here too."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            save_run_settings(Path(output_dir or self.args.output_dir), self.spear_config)

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        if self.accelerator.is_main_process and folder.is_dir():
            torch.save(copy.deepcopy(self.buffer.state_dict()), folder / BUFFER_FILE)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None and (Path(checkpoint) / BUFFER_FILE).is_file():
            self.buffer.load_state_dict(torch.load(Path(checkpoint) / BUFFER_FILE, weights_only=False))
