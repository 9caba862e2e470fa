"""What a preset's config defines about a step's learning signal (spec 2.2 steps 4-8, 10-12).

:class:`Method` turns a config into the calls of :mod:`spear.algo` that every engine makes
the same way: shaped rewards, Dr.BoT response and group filters, GRPO / GiGPO
advantages, the loss settings of the on-policy and the replay update, the two curricula
and the replay buffer's switches. Our :class:`spear.trainer.loop.Trainer` and the TRL
integration (:mod:`spear.integrations.trl`) both hold one, so the two engines cannot
drift apart: only the model calls and the optimizer loop differ.

Every method takes a :class:`~spear.rollout.batch.RolloutBatch` of ``N`` rows (turn or
trajectory layout) and returns arrays / tensors with one entry per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spear.algo.advantages import discounted_returns, gigpo, grpo
from spear.algo.filters import (
    apply_response_filters,
    is_incomplete,
    is_overlong,
    is_repetitive,
    is_unreadable,
    low_variance_group_filter,
    react_action_complete,
    tool_answer_complete,
)
from spear.algo.replay import ReplayBatch, ReplayBuffer
from spear.algo.rewards import episode_tool_bonus, invalid_action_penalty
from spear.algo.schedules import schedule
from spear.rollout.batch import RolloutBatch, TrajectoryRecord
from spear.trainer.actor import LossSettings, UpdateBatch, collate


def step_seed(seed: int, step: int, salt: int) -> int:
    """A 63-bit seed for one purpose (``salt``) at one step."""
    return int(
        np.random.SeedSequence([seed, step, salt]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1
    )


class Method:
    """The learning signal of a config's preset.

    Args:
        config: a validated config (:func:`spear.trainer.config.load_config`).
        tokenizer: decodes responses for the Dr.BoT text filters.
        action_format: the environment's (``"react"`` or ``"tool_call"``).
    """

    def __init__(self, config: dict[str, Any], tokenizer, action_format: str) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.action_format = action_format
        self.total_steps = config["steps"]

    # ------------------------------------------------------------------ curricula
    def lambda_tool(self, step: int) -> float:
        """lambda_tool(t): the tool-call bonus weight (spec 3.1), decaying over the run."""
        tool = self.config["algorithm"]["tool_reward"]
        return schedule(tool["schedule"], step, tool["total_steps"] or self.total_steps, direction="decay")

    def lambda_sil(self, step: int) -> float:
        """lambda_sil(t) = c w(t): the SIL weight (spec 3.2), warming up over the run."""
        sil = self.config["sil"]
        weight = schedule(sil["schedule"], step, sil["total_steps"] or self.total_steps, direction="warmup")
        return sil["coef"] * weight

    # ------------------------------------------------------------------ 4: rewards
    def shape_rewards(self, batch: RolloutBatch, step: int) -> np.ndarray:
        """Per-row score ``[N]``: the episode reward of its trajectory minus the row's
        invalid-action penalty (spec 2.1, 3.1, 3.10)."""
        return self.episode_rewards(batch, step) + self.invalid_penalties(batch)

    def episode_rewards(self, batch: RolloutBatch, step: int) -> np.ndarray:
        """``[N]``: R_ext + the tool bonus (:meth:`tool_bonuses`) of each row's trajectory
        (spec 3.1)."""
        env_rewards = np.array([t.env_reward for t in batch.trajectories], dtype=float)
        return (env_rewards + self.tool_bonuses(batch.trajectories, step))[batch.traj_index]

    def tool_bonuses(self, trajectories: Sequence[TrajectoryRecord], step: int) -> np.ndarray:
        """``[K]``: min(cap, per_call n_k) lambda_tool(t) of each trajectory (spec 3.1). n_k is
        its ``turns`` (agents: every turn the environment was active) or its ``tool_calls``
        (math), as ``algorithm.tool_reward.count`` says; with ``tool_reward.on_success:
        any_call`` (math ``posneg_decay_qwen3``) a trajectory whose R_ext > 0 gets
        1[n_k > 0] max(lambda_tool(t), 0) instead."""
        tool = self.config["algorithm"]["tool_reward"]
        return np.array(
            [
                episode_tool_bonus(
                    getattr(t, tool["count"]),
                    t.env_reward > 0,
                    step,
                    on_success=tool["on_success"],
                    schedule=tool["schedule"],
                    total_steps=tool["total_steps"] or self.total_steps,
                    per_call=tool["per_call"],
                    cap=tool["cap"],
                )
                for t in trajectories
            ],
            dtype=float,
        )

    def invalid_penalties(self, batch: RolloutBatch) -> np.ndarray:
        """``[N]``: minus the invalid-action penalty of each row: of its own turn (turn
        layout) or of every penalised turn of its episode (trajectory layout; spec 3.10)."""
        coef = self.config["algorithm"]["invalid_penalty"]
        if batch.layout == "trajectory":
            counts = np.array([self._penalised_turns(t) for t in batch.trajectories])[batch.traj_index]
            return -coef * counts
        return invalid_action_penalty(self._penalised(batch), coef=coef)

    def _penalised(self, batch: RolloutBatch) -> np.ndarray:
        """``[N]`` flags of the rows the invalid-action penalty applies to (spec 3.10):
        ``format_error`` (the official projection: unparsable responses) by default,
        ``invalid_action`` (also well-formed actions the environment rejected) on request."""
        return getattr(batch, self.config["algorithm"]["invalid_penalty_on"])

    def _penalised_turns(self, trajectory: TrajectoryRecord) -> int:
        on = self.config["algorithm"]["invalid_penalty_on"]
        return trajectory.format_errors if on == "format_error" else trajectory.invalid_actions

    # ------------------------------------------------------------------ 5: response filters
    def filter_responses(self, batch: RolloutBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The response mask ``[N, R]`` with the Dr.BoT-filtered rows zeroed (spec 3.7), and
        the share of rows each filter flagged."""
        enabled = self.config["algorithm"]["filters"]
        if not enabled:
            return batch.response_mask.float(), {}
        texts = self.tokenizer.batch_decode(
            [
                row[mask.bool()].tolist()
                for row, mask in zip(batch.responses, batch.response_mask, strict=True)
            ],
            skip_special_tokens=False,
        )
        validator = tool_answer_complete if self.action_format == "tool_call" else react_action_complete
        lengths = batch.response_mask.sum(dim=1)
        flags = {
            "overlong": (batch.finish_reason == "length") | is_overlong(lengths, self._response_budget()),
            "incomplete": is_incomplete(texts, validator),
            "repetitive": is_repetitive(batch.responses, response_mask=batch.response_mask),
            "unreadable": is_unreadable(texts),
        }
        mask, stats = apply_response_filters(batch.response_mask.float(), flags, enabled)
        return mask, {f"filter/{k}": v for k, v in stats.items()}

    def _response_budget(self) -> int:
        """The padded response length of a row: a turn's ``max_new_tokens``, or the episode's
        ``max_response_tokens`` in the trajectory layout (math: ``data.max_response_length``).
        The overlong filter's limit (spec 3.7) and seq-mean-token-sum-norm's L_max (3.6)."""
        r = self.config["rollout"]
        return r["max_new_tokens"] if r["layout"] == "turn" else r["max_response_tokens"]

    # ------------------------------------------------------------------ 6: group filter
    def filter_groups(self, batch: RolloutBatch, step: int) -> np.ndarray:
        """Indices of the rows kept by the low-variance group filter (spec 3.7), in order.

        Groups are ranked by the std of their episode rewards: the official filter runs
        before the invalid-action penalty is applied (spec 2.2 steps 6 and 8), so groups
        whose copies all fail and differ only by penalties are not preferred;
        ``group_filter.penalised: true`` ranks the penalised scores (spear before the
        switch). The agent code then keeps a random power-of-two subset of the rows
        (``power_of_two_rows``); the math code keeps whole groups and ranks with the
        unbiased std (``ddof: 1``, envs/math.yaml)."""
        gf = self.config["algorithm"]["group_filter"]
        if gf["ratio"] >= 1.0:
            return np.arange(len(batch))
        rewards = self.episode_rewards(batch, step)
        if gf["penalised"]:
            rewards = rewards + self.invalid_penalties(batch)
        keep = low_variance_group_filter(
            rewards,
            batch.group_id,
            batch.traj_id,
            ratio=gf["ratio"],
            kind=gf["kind"],
            ddof=gf["ddof"],
            power_of_two_rows=gf["power_of_two_rows"],
            generator=np.random.default_rng(step_seed(self.config["seed"], step, 2)),
        )
        return np.flatnonzero(keep)

    # ------------------------------------------------------------------ 8: advantages
    def step_returns(self, batch: RolloutBatch) -> np.ndarray | None:
        """``[N]`` GiGPO's discounted return of each row from its turn (spec 3.9), or None for
        estimators without them. Call it on the rollout *before* the filters drop rows: the
        official code discounts over whole trajectories first (``core_gigpo.py``, before
        ``_filter_rollout``)."""
        alg = self.config["algorithm"]
        if alg["estimator"] != "gigpo":
            return None
        return discounted_returns(
            batch.step_reward, batch.traj_id, batch.turn_index, gamma=alg["gigpo"]["gamma"]
        )

    def advantages(
        self, batch: RolloutBatch, scores: np.ndarray, step_returns: np.ndarray | None = None
    ) -> torch.Tensor:
        """Per-row advantages ``[N]`` of the configured estimator (spec 3.3, 3.8); GiGPO needs
        the rows' ``step_returns`` (:meth:`step_returns` of the unfiltered rollout, then
        selected like the rows)."""
        alg = self.config["algorithm"]
        if alg["estimator"] == "gigpo":
            if step_returns is None:
                raise ValueError(
                    "GiGPO needs step_returns: Method.step_returns of the rollout before filtering"
                )
            step_penalty = -invalid_action_penalty(self._penalised(batch), coef=alg["invalid_penalty"])
            return gigpo(
                scores,
                batch.group_id,
                anchor_obs=list(batch.anchor_obs),
                step_returns=step_returns,
                step_weight=alg["gigpo"]["step_weight"],
                mode=alg["gigpo"]["mode"],
                step_penalty=step_penalty,
            )
        return grpo(
            scores,
            batch.group_id,
            normalize_by_std=alg["normalize_by_std"],
            stats_over=alg["stats_over"],
            traj_ids=batch.traj_id,
        )

    # ------------------------------------------------------------------ 10: loss
    def loss_settings(self, *, replay: bool) -> LossSettings:
        """The loss of the on-policy update, or of the replay update (its own Clip-Cov /
        KL-Cov parameters, spec 3.5)."""
        actor = self.config["actor"]
        source = self.config["sil"] if replay else actor
        cov = source["cov"]
        return LossSettings(
            mode=source["loss_mode"],
            agg_mode=actor["agg_mode"],
            clip_low=actor["clip_low"],
            clip_high=actor["clip_high"],
            clip_c=actor["clip_c"],
            cov_ratio=cov["ratio"],
            cov_lb=cov["lb"],
            cov_ub=cov["ub"],
            kl_coef=cov["kl_coef"],
            entropy_coeff=actor["entropy_coeff"],
            norm_length=self._sum_norm_length(),
            temperature=self.config["rollout"]["temperature"],
            cov_block_rows=cov.get("block_rows"),
        )

    def _sum_norm_length(self) -> float | None:
        """L_max of ``seq-mean-token-sum-norm`` (spec 3.6): the padded response budget, a
        constant (the official padded width: 512 a turn for agents, ``data.max_response_length``
        for math), so every token of a mini-batch weighs the same. ``micro_batch`` (spear
        before ``actor.sum_norm_length``) lets the trajectory layout divide by each
        micro-batch's longest row instead (None: ``aggregate`` takes the tensor's width)."""
        actor = self.config["actor"]
        if actor["agg_mode"] != "seq-mean-token-sum-norm":
            return None
        if self.config["rollout"]["layout"] == "trajectory" and actor["sum_norm_length"] == "micro_batch":
            return None
        return float(self._response_budget())

    # ------------------------------------------------------------------ 11-12: the replay buffer
    def buffer_config(self) -> dict[str, Any]:
        """``ReplayConfig`` keyword arguments with the ``auto`` switches resolved."""
        buffer = dict(self.config["sil"]["buffer"])
        if buffer["capacity"] == "auto":  # sized by the first step's rows (ReplayBuffer.add)
            buffer["capacity"] = None
        if buffer["normalize_by_std"] == "auto":  # follow the on-policy estimator (spec 8.14)
            buffer["normalize_by_std"] = self.config["algorithm"]["normalize_by_std"]
        if buffer["keep_rule"] == "auto":  # agent code >= 0, math code > 0 (spec 3.3)
            buffer["keep_rule"] = ">" if self.action_format == "tool_call" else ">="
        return buffer

    def store(
        self,
        buffer: ReplayBuffer,
        batch: RolloutBatch,
        *,
        scores: np.ndarray,
        response_mask: torch.Tensor,
        old_log_prob: torch.Tensor,
        advantages: torch.Tensor,
        step: int,
    ) -> int:
        """Steps 11-12: prune stale entries, record group statistics and store the rows of
        ``batch`` with A > 0: prompt and response ids, the (filtered) response mask ``[N, R]``,
        the behaviour log-probs of collection time ``[N, R]``, the scores ``[N]`` and each
        row's advantage (the token-level ``[N, R]`` ones averaged over the row's valid tokens:
        a row the response filters masked has A = 0 and is not stored). Math stores only
        trajectories with a tool call (spec 2.3). Returns the number of rows stored."""
        p = batch.prompt_length
        rows: dict[str, list] = {"prompt": [], "response": [], "response_mask": [], "old_log_prob": []}
        for i in range(len(batch)):
            prompt_mask = batch.attention_mask[i, :p].bool()
            length = int(batch.attention_mask[i, p:].sum())
            rows["prompt"].append(batch.input_ids[i, :p][prompt_mask].tolist())
            rows["response"].append(batch.responses[i, :length].tolist())
            rows["response_mask"].append(response_mask[i, :length].tolist())
            rows["old_log_prob"].append(old_log_prob[i, :length].tolist())
        eligible = None
        if self.action_format == "tool_call":
            eligible = np.array([t.tool_calls > 0 for t in batch.trajectories])[batch.traj_index]
        row_advantages = advantages.sum(dim=1) / response_mask.sum(dim=1).clamp(min=1)
        return buffer.add(
            rows,
            rewards=scores,
            advantages=row_advantages,
            group_ids=batch.group_id,
            traj_ids=batch.traj_id,
            step=step,
            eligible=eligible,
        )

    def replay_batch(self, replay: ReplayBatch) -> UpdateBatch:
        """A replay draw padded into an :class:`UpdateBatch` (its recalibrated advantage on
        every valid token, its stored behaviour log-probs)."""
        rows = replay.rows
        return collate(
            rows["prompt"],
            rows["response"],
            rows["response_mask"],
            rows["old_log_prob"],
            replay.advantages.tolist(),
            pad_token_id=self.tokenizer.pad_token_id,
        )
