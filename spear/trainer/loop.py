"""The SPEAR training loop (spec 2.2 turn rows / 2.3 trajectory rows), one method per step.

``Trainer.fit`` reads like the spec (steps 4-8 and the loss settings are
:class:`spear.trainer.method.Method`, shared with the TRL integration)::

    for t in steps:
        batch    = rollout(t)                                # 1  B tasks x G copies
        scores   = shape_rewards(batch, t)                   # 4  R_ext + tool bonus - invalid penalty
        batch    = filter_responses(batch)                   # 5  Dr.BoT response filters
        batch    = filter_groups(batch)                      # 6  low-variance group filter
        old_lp   = behaviour_log_probs(batch)                # 7
        adv      = advantages(batch, scores)                 # 8  GRPO / GiGPO
        replay   = buffer.sample() if buffer.ready()         # 9  data from steps < t only
        update(batch); update(replay, weight=lambda_sil(t))  # 10 separate optimizer steps
        buffer.add(batch, t)                                 # 11-12 prune, baseline, store A > 0
        evaluate / log / checkpoint                          # 13

All randomness of step ``t`` is derived from ``(seed, t)`` (plus the buffer's saved
RNG), so a resumed run reproduces the uninterrupted one bitwise when it computes with the
same torch thread count, which every checkpoint records (``spear.trainer.run.resume``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from spear.algo.advantages import to_token_level
from spear.algo.replay import ReplayBuffer, ReplayConfig
from spear.envs import make
from spear.rollout.batch import RolloutBatch
from spear.rollout.config import RolloutConfig
from spear.rollout.engine import RolloutEngine
from spear.trainer.actor import UpdateBatch, compute_log_probs, policy_update
from spear.trainer.checkpoint import (
    checkpoint_dir,
    checkpoint_step,
    latest_checkpoint,
    load_state,
    save_checkpoint,
    staged_folder,
)
from spear.trainer.config import ConfigError
from spear.trainer.evaluate import (
    EvalResult,
    episode_outcomes,
    load_outcomes,
    paired_gain,
    play_held_out,
    save_outcomes,
    summarize,
)
from spear.trainer.failures import FailureLog
from spear.trainer.interrupt import InterruptGuard, TrainingInterrupted
from spear.trainer.logger import RunLogger, write_plots
from spear.trainer.method import Method, step_seed
from spear.trainer.parallel import DataParallel
from spear.trainer.samples import SampleRecorder


def rollout_config(
    config: dict[str, Any], *, group_size: int, temperature: float, seed: int = 0
) -> RolloutConfig:
    """The engine settings of a run's ``rollout`` section, for ``group_size`` copies at ``temperature``."""
    r = config["rollout"]
    return RolloutConfig(
        group_size=group_size,
        max_turns=r["max_turns"],
        max_new_tokens=r["max_new_tokens"],
        max_response_tokens=r["max_response_tokens"],
        temperature=temperature,
        top_p=r["top_p"],
        history_length=r["history_length"],
        layout=r["layout"],
        show_admissible=r["show_admissible"],
        prompt_style=r["prompt_style"],
        seed=seed,
        decode=r["decode"],
    )


# rollout keys that shape what the policy reads (the layout: a prompt per turn with a history
# window, or the whole conversation so far)
PROMPT_KEYS = ("prompt_style", "history_length", "show_admissible", "layout")
EVAL_SEED_OFFSET = 7919  # the eval engine's sampler seed is config seed + this
RANK_SEED_STRIDE = 104729  # each data-parallel process samples from its own stream
EVAL_BATCH = 64  # held-out episodes played together


def sampler_seed(config: dict[str, Any], split: str, rank: int = 0) -> int:
    """The seed of the engine that plays ``split`` ("train" or "eval") in process ``rank``."""
    return config["seed"] + (0 if split == "train" else EVAL_SEED_OFFSET) + RANK_SEED_STRIDE * rank


def make_engine(
    model: Any,
    tokenizer: Any,
    config: dict[str, Any],
    split: str,
    *,
    group_size: int,
    temperature: float,
    rank: int = 0,
) -> RolloutEngine:
    """The rollout engine a run plays ``split`` ("train" or "eval") with, seeded by
    :func:`sampler_seed`: the trainer, the starting-policy build (whose recorded evaluation a
    run reuses, :func:`eval_settings`) and the TRL integration play the same episodes from the
    same config."""
    env = config["env"]
    return RolloutEngine(
        model,
        tokenizer,
        rollout_config(
            config, group_size=group_size, temperature=temperature, seed=sampler_seed(config, split, rank)
        ),
        env_options={**env["options"], "split": split},
        env_workers=env["workers"],
    )


def eval_batch_size(episodes: int) -> int:
    return max(1, min(episodes, EVAL_BATCH))


def eval_settings(config: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """Everything besides the weights that decides a held-out evaluation's episodes and
    samples: two evaluations with equal settings and weights play the same first episodes
    with the same sampler seeds (batches of :data:`EVAL_BATCH`)."""
    r = config["rollout"]
    parameter = next(model.parameters())
    return {
        "env": config["env"]["name"],
        "env_options": config["env"]["options"],
        "rollout": {key: r[key] for key in (*PROMPT_KEYS, "max_turns", "max_new_tokens", "top_p")},
        "temperature": config["eval"]["temperature"],
        "seed": sampler_seed(config, "eval"),
        "batch": EVAL_BATCH,
        "device": parameter.device.type,
        "dtype": str(parameter.dtype).removeprefix("torch."),
    }


@dataclass
class StepBatch:
    """The processed on-policy batch of one step."""

    rollout: RolloutBatch
    scores: np.ndarray  # [N] shaped reward of each row
    update: UpdateBatch


class Trainer:
    """Runs SPEAR (or any preset) on a model, an environment and a run directory.

    Args:
        config: a validated config (:func:`spear.trainer.config.load_config`).
        model, tokenizer: the policy (after any cold start).
        run_dir: where metrics, plots, TensorBoard files and checkpoints go.
        accelerator: an ``accelerate.Accelerator``: its device, mixed precision and, when
            started with ``accelerate launch``, data parallelism over task groups
            (:mod:`spear.trainer.parallel`). None: a single process on the model's device.
    """

    def __init__(self, config: dict[str, Any], model, tokenizer, run_dir: Path, *, accelerator=None) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.run_dir = Path(run_dir)
        self.parallel = DataParallel.from_accelerator(accelerator)
        self.autocast = accelerator.autocast if accelerator is not None else contextlib.nullcontext
        if accelerator is not None:
            model = model.to(accelerator.device)
        if self.parallel is not None:
            tasks = config["rollout"]["tasks_per_step"]
            if tasks % self.parallel.world_size:
                raise ConfigError(
                    f"rollout.tasks_per_step ({tasks}) must be a multiple of the number of processes "
                    f"({self.parallel.world_size})"
                )
            self.parallel.broadcast_parameters(model)
        self.model = model
        actor = config["actor"]
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=actor["lr"], weight_decay=actor["weight_decay"])
        self.total_steps = config["steps"]
        self.env_name = config["env"]["name"]
        r = config["rollout"]
        self.engine = make_engine(
            model,
            tokenizer,
            config,
            "train",
            group_size=r["group_size"],
            temperature=r["temperature"],
            rank=self._rank,
        )
        self.eval_engine = make_engine(
            model,
            tokenizer,
            config,
            "eval",
            group_size=1,
            temperature=config["eval"]["temperature"],
            rank=self._rank,
        )
        probe = make(self.env_name, **config["env"]["options"])
        self.method = Method(config, tokenizer, probe.action_format)
        probe.close()
        self.buffer = ReplayBuffer(ReplayConfig(**self.method.buffer_config()), seed=config["seed"])
        # what `spear inspect` shows (logging.samples); written by the main process only
        self.samples = (
            SampleRecorder.create(self.run_dir, config, tokenizer, self.method) if self.is_main else None
        )
        # episodes that raised: told once in full, fatal when most of a batch did
        self.failures = FailureLog(self.run_dir if self.is_main else None)
        # Ctrl-C waits while the state is part-way through a step's update (spear.trainer.interrupt)
        self.interrupt = InterruptGuard()
        self.start_step = 1
        self.eval_before: EvalResult | None = None
        self.eval_before_outcomes: dict[str, list] | None = None

    # ------------------------------------------------------------------ setup
    @property
    def is_main(self) -> bool:
        """The process that evaluates, logs and writes files."""
        return self.parallel is None or self.parallel.is_main

    def _barrier(self) -> None:
        if self.parallel is not None:
            self.parallel.barrier()

    @property
    def _rank(self) -> int:
        return self.parallel.rank if self.parallel is not None else 0

    # ------------------------------------------------------------------ 1: rollout
    def rollout(self, step: int) -> RolloutBatch:
        """The step's B task seeds; with data parallelism each process plays its share and
        every process returns the gathered global batch."""
        rng = np.random.default_rng(step_seed(self.config["seed"], step, 1))
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=self.config["rollout"]["tasks_per_step"])]
        lo, hi = self.parallel.shard(0, len(seeds)) if self.parallel is not None else (0, len(seeds))
        with self.autocast():
            batch = self.engine.collect(self.env_name, seeds[lo:hi], step=step, first_group=lo)
        return batch if self.parallel is None else RolloutBatch.concat(self.parallel.gather(batch))

    # ------------------------------------------------------------------ one step
    def prepare(self, step: int, timings: dict[str, float]) -> tuple[StepBatch | None, dict[str, float]]:
        """Steps 1-8: rollout, rewards, filters, behaviour log-probs, advantages."""
        start = time.perf_counter()
        rollout = self.rollout(step)
        timings["time/rollout"] = time.perf_counter() - start
        self.failures.check(rollout.trajectories, f"step {step}")
        metrics = {f"rollout/{k}": v for k, v in rollout.stats().items()}
        rollout = rollout.drop_failed()
        if len(rollout) == 0:
            return None, metrics
        if self.config["actor"]["minibatch_order"] == "trajectory":
            rollout = rollout.trajectory_major()  # mini-batches of whole trajectories (official)
        returns = self.method.step_returns(rollout)  # GiGPO: over whole trajectories, before filters
        scores = self.method.shape_rewards(rollout, step)
        metrics["rollout/shaped_reward"] = float(np.mean([scores[t.rows[0]] for t in rollout.trajectories]))
        mask, filter_stats = self.method.filter_responses(rollout)
        metrics.update(filter_stats)
        keep = self.method.filter_groups(rollout, step)
        metrics["rollout/rows_after_group_filter"] = float(len(keep))
        rollout, scores, mask = rollout.select(keep), scores[keep], mask[torch.as_tensor(keep)]
        returns = returns[keep] if returns is not None else None

        start = time.perf_counter()
        # the policy trained is pi_T = softmax(logits / T) at the rollout temperature T (verl);
        # with top_p = 1 the sampler's log-probs are exactly log pi_T of the drawn tokens
        update = UpdateBatch(
            input_ids=rollout.input_ids,
            attention_mask=rollout.attention_mask,
            position_ids=rollout.position_ids,
            prompt_length=rollout.prompt_length,
            response_mask=mask,
            old_log_prob=rollout.sampling_log_prob * mask,
            advantages=torch.zeros_like(mask),
        )
        if self.config["actor"]["recompute_old_log_prob"]:
            with self.autocast():
                update.old_log_prob = compute_log_probs(
                    self.model,
                    update,
                    self.config["actor"]["micro_batch_size"],
                    temperature=self.config["rollout"]["temperature"],
                    forward_tokens=self.config["actor"]["forward_tokens"],
                )
        timings["time/log_prob"] = time.perf_counter() - start
        update.advantages = to_token_level(self.method.advantages(rollout, scores, returns), mask)
        return StepBatch(rollout, scores, update), metrics

    def _update(
        self, batch: UpdateBatch, step: int, *, replay: bool, weight: float = 1.0, epoch: int = 0
    ) -> dict[str, float]:
        """One pass of optimizer steps over ``batch`` (PPO epoch ``epoch`` of step ``step``)."""
        actor = self.config["actor"]
        self.model.train()
        try:
            with self.autocast():
                return policy_update(
                    self.model,
                    self.optimizer,
                    batch,
                    self.method.loss_settings(replay=replay),
                    weight=weight,
                    weight_at=self.config["sil"]["weight_at"],
                    mini_batch_size=actor["mini_batch_size"],
                    micro_batch_size=actor["micro_batch_size"],
                    forward_tokens=actor["forward_tokens"],
                    epochs=1,  # train_step nests the epochs (on-policy, then replay, per epoch)
                    grad_clip=actor["grad_clip"],
                    generator=torch.Generator().manual_seed(
                        step_seed(self.config["seed"], step, 3 + replay + 2 * epoch)
                    ),
                    parallel=self.parallel,
                )
        finally:
            self.model.eval()

    def store(self, step_batch: StepBatch, step: int) -> int:
        """Steps 11-12 on the step's kept rows (:meth:`Method.store`)."""
        update = step_batch.update
        return self.method.store(
            self.buffer,
            step_batch.rollout,
            scores=step_batch.scores,
            response_mask=update.response_mask,
            old_log_prob=update.old_log_prob,
            advantages=update.advantages,
            step=step,
        )

    def train_step(self, step: int) -> dict[str, float]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        step_batch, metrics = self.prepare(step, timings)
        # from here the step changes what a checkpoint holds (buffer RNG, weights, optimizer)
        self.interrupt.hold()
        metrics["schedule/lambda_tool"] = self.method.lambda_tool(step)
        metrics["schedule/lambda_sil"] = (
            self.method.lambda_sil(step) if self.config["sil"]["enabled"] else 0.0
        )
        if step_batch is None:
            metrics["actor/skipped_empty_batch"] = 1.0
            return metrics

        replay = None
        if self.config["sil"]["enabled"] and self.buffer.ready():
            replay = self.buffer.sample()
        metrics["sil/fired"] = float(replay is not None)
        metrics["sil/replay_rows"] = float(len(replay) if replay is not None else 0)

        # step 10, nested as the official update_policy: per PPO epoch, the on-policy
        # mini-batches, then the replay ones, each with its own optimizer steps
        replay_batch = self.method.replay_batch(replay) if replay is not None else None
        on_policy, replayed = [], []
        timings["time/update"] = timings["time/replay"] = 0.0
        for epoch in range(self.config["actor"]["ppo_epochs"]):
            start = time.perf_counter()
            if bool(step_batch.update.response_mask.any()):
                on_policy.append(self._update(step_batch.update, step, replay=False, epoch=epoch))
            timings["time/update"] += time.perf_counter() - start
            start = time.perf_counter()
            if replay_batch is not None:
                weight = self.method.lambda_sil(step)
                replayed.append(self._update(replay_batch, step, replay=True, weight=weight, epoch=epoch))
            timings["time/replay"] += time.perf_counter() - start
        metrics.update({f"actor/{k}": v for k, v in _over_epochs(on_policy).items()})
        if replay is not None:
            metrics.update({f"sil/{k}": v for k, v in _over_epochs(replayed).items()})
            metrics["sil/baseline"] = replay.baseline[0] if replay.baseline is not None else None
            metrics["sil/baseline_std"] = replay.baseline[1] if replay.baseline is not None else None

        if self.config["sil"]["enabled"]:
            metrics["sil/stored_rows"] = float(self.store(step_batch, step))
            metrics["sil/buffer_rows"] = float(len(self.buffer))
            metrics["sil/qualifying_rows"] = float(self.buffer.num_qualifying())
            metrics["sil/capacity"] = float(self.buffer.config.capacity)
        timings["time/step"] = time.perf_counter() - started
        metrics.update(timings)
        if self.samples is not None:
            self.samples.record(step, step_batch, replay, metrics)
        return metrics

    # ------------------------------------------------------------------ evaluation
    def held_out_outcomes(self, episodes: int) -> dict[str, list]:
        """Per-episode outcomes of the first ``episodes`` held-out tasks (:func:`episode_outcomes`)."""
        with self.autocast():
            records = play_held_out(
                self.eval_engine, self.env_name, episodes, batch_size=eval_batch_size(episodes)
            )
        self.failures.check(records, "held-out evaluation")
        return episode_outcomes(records)

    def evaluate(self, episodes: int) -> EvalResult:
        return summarize(self.held_out_outcomes(episodes))

    def set_eval_before(self, outcomes: dict[str, list]) -> None:
        """The evaluation before RL, kept per episode in ``eval_outcomes.json`` so the final one
        can be paired with it (also across a resume)."""
        self.eval_before = summarize(outcomes)
        self.eval_before_outcomes = outcomes
        save_outcomes(self.run_dir, {"before": outcomes})

    # ------------------------------------------------------------------ checkpoints
    def save(self, step: int, *, wait: bool = True) -> Path:
        """Write the checkpoint of ``step`` (main process; the others wait for it when ``wait``)."""
        path = checkpoint_dir(self.run_dir, step)
        if self.is_main:
            state = {
                "step": step,
                "buffer": self.buffer.state_dict(),
                "config": self.config,
                "eval_before": self.eval_before.as_dict() if self.eval_before is not None else None,
                # CPU kernels split their sums by thread: a resume with another count differs in
                # round-off, so spear.trainer.run.resume restores this one (docs/DESIGN.md)
                "threads": torch.get_num_threads(),
            }
            path = save_checkpoint(
                self.run_dir,
                step,
                model=self.model,
                tokenizer=self.tokenizer,
                optimizer=self.optimizer,
                state=state,
                keep=self.config["checkpoint"]["keep"],
                model_files={RUN_SETTINGS: run_settings_text(self.config)},
            )
        if wait:
            self._barrier()
        return path

    def resume(self) -> int:
        """Restore optimizer, buffer and step from the newest complete checkpoint (the caller
        loaded the model from that checkpoint's ``model`` folder)."""
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is None:
            raise ValueError(f"no complete checkpoint in {self.run_dir / 'checkpoints'}")
        state, optimizer_state = load_state(checkpoint)
        self.optimizer.load_state_dict(optimizer_state)
        self.buffer.load_state_dict(state["buffer"])
        if state.get("eval_before") is not None:
            before = state["eval_before"]
            self.eval_before = EvalResult(
                **{**before, "success_ci": tuple(before["success_ci"]), "score_ci": tuple(before["score_ci"])}
            )
            self.eval_before_outcomes = load_outcomes(self.run_dir).get("before")
        self.start_step = state["step"] + 1
        return state["step"]

    # ------------------------------------------------------------------ the loop
    def fit(self, *, progress: bool = True, logger: RunLogger | None = None) -> dict[str, Any]:
        """Train from ``start_step`` to ``steps``; returns a summary with eval before -> after.

        With data parallelism every process trains; only the main one evaluates, logs and
        writes files (the others wait at its checkpoints). Ctrl-C stops at a step boundary
        with the last completed step checkpointed (:mod:`spear.trainer.interrupt`) and
        raises :class:`~spear.trainer.interrupt.TrainingInterrupted`.
        """
        cfg = self.config
        main = self.is_main
        if main:
            logger = logger or RunLogger.for_run(
                self.run_dir, cfg, resume_step=self.start_step - 1 if self.start_step > 1 else None
            )
        bar = _progress(self.start_step, self.total_steps, enabled=progress and main)
        completed = self.start_step - 1
        with self.interrupt:
            try:
                self._evaluate_before(logger)
                for step in range(self.start_step, self.total_steps + 1):
                    self._step(step, logger, bar)
                    completed = step
                    self.interrupt.release()
                    if self.interrupt.requested:  # a held Ctrl-C: the step is complete, stop here
                        raise KeyboardInterrupt
                if latest_checkpoint(self.run_dir) != checkpoint_dir(self.run_dir, self.total_steps):
                    self.interrupt.hold()
                    self.save(self.total_steps)
                    self.interrupt.release()
                bar.close()
                return self._finish(logger)
            except KeyboardInterrupt:
                bar.close()
                raise self._interrupted(completed) from None

    def _evaluate_before(self, logger: RunLogger | None) -> None:
        """The evaluation before RL at step 0, unless a run arrives with it
        (spear.trainer.run.recorded_start_outcomes) or resumes after it."""
        cfg = self.config
        measure = self.eval_before is None
        if self.is_main and cfg["eval"]["final_episodes"] > 0 and (measure or self.start_step == 1):
            if measure:
                self.set_eval_before(self.held_out_outcomes(cfg["eval"]["final_episodes"]))
            logger.log(
                0, {"eval/success_rate": self.eval_before.success_rate, "eval/score": self.eval_before.score}
            )

    def _checkpoint_due(self, step: int) -> bool:
        every = self.config["checkpoint"]["every"]
        return bool(every) and step % every == 0

    def _step(self, step: int, logger: RunLogger | None, bar: Any) -> None:
        """One training step with its mid-run evaluation, log line and checkpoint."""
        cfg = self.config
        metrics = self.train_step(step)
        self.interrupt.hold()  # also when train_step returned early (an empty batch)
        every, episodes = cfg["eval"]["every"], cfg["eval"]["episodes"]
        if self.is_main and every and step % every == 0 and step < self.total_steps and episodes:
            result = self.evaluate(episodes)
            metrics["eval/success_rate"], metrics["eval/score"] = result.success_rate, result.score
        if self.is_main:
            logger.log(step, metrics)
        if self._checkpoint_due(step):
            self.save(step)
        bar.update(1)
        entropy = metrics.get("actor/entropy")
        bar.set_postfix(
            success=f"{metrics.get('rollout/success_rate', 0.0):.2f}",
            entropy="-" if entropy is None else f"{entropy:.3f}",  # no update this step
            sil=f"{metrics.get('schedule/lambda_sil', 0.0):.2f}",
            refresh=False,
        )

    def _interrupted(self, completed: int) -> TrainingInterrupted:
        """What a Ctrl-C leaves: the checkpoint of ``completed`` when the state is that step's
        (written now if it is not on disk yet), else (a second Ctrl-C part-way through a step)
        the newest checkpoint already on disk, untouched."""
        lost = completed + 1 if self.interrupt.held else None
        checkpoint = latest_checkpoint(self.run_dir)
        if lost is None and completed >= 1 and self.is_main:
            path = checkpoint_dir(self.run_dir, completed)
            if checkpoint != path:
                self.interrupt.hold()  # one more Ctrl-C during this write leaves the older checkpoint
                checkpoint = self.save(completed, wait=False)
                self.interrupt.release()
        kept = checkpoint_step(checkpoint) if checkpoint is not None else 0
        return TrainingInterrupted(self.run_dir, kept, checkpoint, lost)

    def _finish(self, logger: RunLogger | None) -> dict[str, Any]:
        """The final evaluation, paired with the one before RL, then the final model."""
        cfg = self.config
        main = self.is_main
        after = paired = None
        if main and cfg["eval"]["final_episodes"] > 0:
            after_outcomes = self.held_out_outcomes(cfg["eval"]["final_episodes"])
            self.interrupt.hold()  # the writes below belong together: a resume redoes all or none
            save_outcomes(self.run_dir, {"before": self.eval_before_outcomes, "after": after_outcomes})
            after = summarize(after_outcomes)
            if self.eval_before_outcomes is not None:
                paired = paired_gain(self.eval_before_outcomes, after_outcomes)
            logger.log(
                self.total_steps,
                {"eval/final_success_rate": after.success_rate, "eval/final_score": after.score},
            )
        self.interrupt.hold()
        if main:
            if cfg["logging"]["plots"]:
                write_plots(logger.history(), self.run_dir / "plots")
            logger.close()
            # last, and whole or absent: its presence marks the run finished (run.resume)
            save_final_model(self.model, self.tokenizer, self.run_dir / FINAL_MODEL, cfg)
        self.interrupt.release()
        self._barrier()
        return {
            "eval_before": self.eval_before,
            "eval_after": after,
            "eval_paired": paired,  # after vs before on the same episodes (evaluate.PairedGain)
            "run_dir": str(self.run_dir),
            "is_main": main,
        }


def _over_epochs(parts: list[dict[str, float]]) -> dict[str, float]:
    """The metrics of several passes of :func:`policy_update` as one: optimizer-step counts
    added, the rest averaged over the passes."""
    if not parts:
        return {}
    summed = ("optimizer_steps", "nonfinite_skipped")
    return {
        name: sum(p[name] for p in parts) / (1 if name in summed else len(parts))
        for name in parts[0]
        if all(name in p for p in parts)
    }


RUN_SETTINGS = "spear_run.yaml"
FINAL_MODEL = "final_model"  # in the run directory; written last, so it marks a finished run


def save_final_model(model, tokenizer, out: Path, config: dict[str, Any]) -> None:
    """The trained policy as a standalone HF model with its run settings
    (:func:`save_run_settings`), written whole or not at all. A LoRA (peft) policy also keeps
    its adapter in ``<out>_adapter`` and is saved merged, so ``from_pretrained`` loads it alone."""
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(Path(f"{out}_adapter"), safe_serialization=True)
        model = model.merge_and_unload()
    with staged_folder(Path(out)) as partial:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        save_run_settings(partial, config)


def run_settings_text(config: dict[str, Any]) -> str:
    """The ``spear_run.yaml`` of a model trained with ``config``: the environment and rollout
    settings that evaluation needs to play the prompts the model was trained on."""
    settings = {
        "env": {"name": config["env"]["name"], "options": config["env"]["options"]},
        "rollout": config["rollout"],
    }
    return yaml.safe_dump(settings, sort_keys=False)


def save_run_settings(model_dir: Path, config: dict[str, Any]) -> None:
    """Write :func:`run_settings_text` next to a saved model, so that ``spear eval`` (and a run
    started from the folder) plays the same prompts by default."""
    (Path(model_dir) / RUN_SETTINGS).write_text(run_settings_text(config))


def _progress(start: int, total: int, *, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=start - 1, desc="RL", unit="step", disable=not enabled, dynamic_ncols=True
    )
