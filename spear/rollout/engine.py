"""The multi-turn rollout engine (spec 2.2 step 1, 2.3; docs/ROLLOUT.md).

``RolloutEngine.collect(env, task_seeds, step)`` plays ``len(task_seeds)`` tasks
x ``group_size`` copies. The copies of a task are reset with the same seed, so
a group shares its start state (GRPO/GiGPO groups, spec 3.8-3.9). Every turn,
all still-active episodes are sampled in ONE batched generation call, their
responses go to ``EnvPool.step``, and the results update each episode.

Two layouts of the resulting rows:

* ``turn`` (verl-agent): one row per turn, prompt = that turn's templated
  prompt, response = the generated ids. The environment text only ever sits in
  prompts, so ``response_mask`` is 1 on every generated token.
* ``trajectory`` (verl math / TRL tool_mask): one row per episode, built by
  appending the exact generated ids and the tokenized chat-template text between
  turns; ``response_mask`` is 1 exactly on generated tokens. Model output is
  never re-tokenized.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from spear.envs.base import StepResult
from spear.envs.pool import EnvPool, EnvReset, EnvSpec
from spear.rollout.batch import RolloutBatch, Row, TrajectoryRecord
from spear.rollout.config import RolloutConfig
from spear.rollout.generation import Generation, generate
from spear.rollout.prompts import (
    REACT_ROLE,
    Message,
    encode,
    history_action,
    react_followup_prompt,
    react_turn_prompt,
    render,
    template_delta,
    tool_call_messages,
)


@dataclass
class _Episode:
    """Mutable state of one episode while it is played."""

    slot: int
    record: TrajectoryRecord
    action_format: str
    role: str | None = None  # the environment's prompt_role
    observation: str = ""
    anchor: str = ""
    first_anchor: str = ""
    instruction: str = ""
    admissible: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    active: bool = True
    history: list[tuple[str, str]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    sampling_logprobs: list[float] = field(default_factory=list)

    def stop(self, *, truncated: bool = False) -> None:
        self.active = False
        self.record.truncated = self.record.truncated or truncated


def _eos_ids(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if config_eos is not None:
        ids |= {int(config_eos)} if isinstance(config_eos, int) else {int(i) for i in config_eos}
    if not ids:
        raise ValueError("neither the tokenizer nor the model's generation config defines an EOS token")
    return tuple(sorted(ids))


def _check_prefix_preserving(tokenizer: PreTrainedTokenizerBase) -> None:
    """Fail early (ValueError) if the chat template cannot be extended turn by turn.

    The probe reply has surrounding whitespace and a reasoning block, because
    templates that trim content or drop earlier ``<think>`` blocks rewrite history.
    """
    probe = [{"role": "user", "content": "question"}]
    reply = " <think>probe</think>reply \n"
    template_delta(tokenizer, probe, reply, [{"role": "user", "content": "observation"}])
    template_delta(tokenizer, probe, reply, [{"role": "tool", "content": "result"}])


ScriptedPolicy = Callable[[EnvPool, list[int]], list[str]]
"""``policy(pool, slots) -> responses``: one response text per playing slot."""


class RolloutEngine:
    """Collects multi-turn episodes with a causal LM and turns them into a :class:`RolloutBatch`.

    Args:
        model: a HF causal LM (its ``generation_config.eos_token_id`` is honoured).
        tokenizer: its tokenizer, with a chat template and a pad token.
        config: the :class:`RolloutConfig`.
        env_options: options for pools the engine creates from an environment name.
        env_workers: worker processes of those pools (0 = in this process).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        config: RolloutConfig | None = None,
        *,
        env_options: dict[str, Any] | None = None,
        env_workers: int = 0,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.config = config if config is not None else RolloutConfig()
        if not isinstance(self.config, RolloutConfig):
            raise ValueError(f"config must be a RolloutConfig, got {type(config).__name__}")
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a pad token (load_model_and_tokenizer sets one)")
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template")
        self.eos_token_ids = _eos_ids(model, tokenizer)
        self._eos_texts = {i: tokenizer.decode([i], skip_special_tokens=False) for i in self.eos_token_ids}
        if self.config.layout == "trajectory":
            _check_prefix_preserving(tokenizer)
        self.env_options = dict(env_options or {})
        self.env_workers = env_workers
        self._pools: dict[tuple[str, int], EnvPool] = {}

    # -- public API ---------------------------------------------------------
    def collect(
        self,
        pool_or_env_name: EnvPool | str,
        task_seeds: Sequence[int],
        step: int = 0,
        *,
        policy: ScriptedPolicy | None = None,
        first_group: int = 0,
    ) -> RolloutBatch:
        """Play every task seed ``group_size`` times and return the rows (docs/ROLLOUT.md).

        ``step`` (the training step) names the groups (``group_id = f"{step}-{b}"``)
        and seeds the sampler together with ``config.seed``. With ``policy``, a scripted
        policy writes the responses instead of the model (demonstrations for SFT): the
        rows then hold its tokenised text, with log-probs 0. ``first_group`` numbers the
        groups from there (a data-parallel process playing tasks ``first_group...``).
        """
        seeds = self._check_seeds(task_seeds)
        cfg = self.config
        pool = self._pool(pool_or_env_name, len(seeds) * cfg.group_size)
        max_turns = cfg.max_turns if cfg.max_turns is not None else pool.max_turns
        resets = pool.reset([seed for seed in seeds for _ in range(cfg.group_size)])
        episodes = [
            self._start(slot, seeds[slot // cfg.group_size], step, resets[slot], pool.spec, first_group)
            for slot in range(len(resets))
        ]
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(hash((cfg.seed, step)) & (2**63 - 1))
        rows: list[Row] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for turn in range(max_turns):
                live = [e for e in episodes if e.active]
                if not live:
                    break
                self._play_turn(pool, live, rows, generator, last_turn=turn == max_turns - 1, policy=policy)
        finally:
            self.model.train(was_training)
        return self._build_batch(episodes, rows)

    def close(self) -> None:
        """Close the environment pools this engine created."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    # -- setup --------------------------------------------------------------
    @staticmethod
    def _check_seeds(task_seeds: Sequence[int]) -> list[int]:
        seeds = list(task_seeds)
        if not seeds or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seeds):
            raise ValueError(f"task_seeds must be a non-empty list of integers, got {task_seeds!r}")
        return [int(s) for s in seeds]

    def _pool(self, pool_or_env_name: EnvPool | str, size: int) -> EnvPool:
        if isinstance(pool_or_env_name, EnvPool):
            if len(pool_or_env_name) != size:
                raise ValueError(
                    f"the pool has {len(pool_or_env_name)} environments; this collect needs "
                    f"len(task_seeds) x group_size = {size}"
                )
            return pool_or_env_name
        if not isinstance(pool_or_env_name, str):
            raise ValueError(
                f"pool_or_env_name must be an EnvPool or an environment name, got {pool_or_env_name!r}"
            )
        key = (pool_or_env_name, size)
        if key not in self._pools:
            self._pools[key] = EnvPool(
                pool_or_env_name, size, env_options=self.env_options, workers=self.env_workers
            )
        return self._pools[key]

    def _start(
        self, slot: int, seed: int, step: int, reset: EnvReset, spec: EnvSpec, first_group: int
    ) -> _Episode:
        group = first_group + slot // self.config.group_size
        record = TrajectoryRecord(
            group_id=f"{step}-{group}", traj_id=f"{step}-{group}-{slot % self.config.group_size}", seed=seed
        )
        episode = _Episode(slot=slot, record=record, action_format=spec.action_format, role=spec.prompt_role)
        if reset.failed:
            record.failed, record.error = True, str(reset.info.get("env_traceback") or reset.error)
            episode.stop()
            return episode
        episode.observation = reset.observation
        episode.anchor = episode.first_anchor = str(reset.info.get("anchor_obs", reset.observation))
        episode.instruction, episode.admissible, episode.tools = (
            reset.instruction,
            reset.admissible_actions,
            reset.tools,
        )
        episode.messages = self._opening_messages(episode)
        if self.config.layout == "trajectory":
            episode.prompt_ids = encode(
                self.tokenizer, render(self.tokenizer, episode.messages, episode.tools)
            )
            if len(episode.prompt_ids) > self.config.max_prompt_tokens:
                episode.stop(truncated=True)
        return episode

    def _opening_messages(self, episode: _Episode) -> list[Message]:
        if episode.action_format == "tool_call":
            return tool_call_messages(episode.observation, self.config.system_prompt)
        return [*self._system_messages(), {"role": "user", "content": self._react_prompt(episode)}]

    def _system_messages(self) -> list[Message]:
        prompt = self.config.system_prompt
        return [{"role": "system", "content": prompt}] if prompt else []

    # -- one turn -----------------------------------------------------------
    def _react_prompt(self, episode: _Episode) -> str:
        cfg = self.config
        return react_turn_prompt(
            instruction=episode.instruction,
            observation=episode.observation,
            history=episode.history,
            admissible=episode.admissible,
            history_length=cfg.history_length,
            show_admissible=cfg.show_admissible,
            max_admissible=cfg.max_admissible,
            style=cfg.prompt_style,
            role=episode.role or REACT_ROLE,
        )

    def _prompt_ids(self, episode: _Episode) -> list[int] | None:
        """This turn's prompt, or None when it exceeds ``max_prompt_tokens``."""
        if self.config.layout == "trajectory":
            return episode.prompt_ids + episode.response_ids
        if episode.action_format == "react":
            messages = [*self._system_messages(), {"role": "user", "content": self._react_prompt(episode)}]
        else:
            messages = episode.messages
        ids = encode(self.tokenizer, render(self.tokenizer, messages, episode.tools))
        return ids if len(ids) <= self.config.max_prompt_tokens else None

    def _budget(self, episode: _Episode) -> int:
        if self.config.layout == "turn":
            return self.config.max_new_tokens
        return min(self.config.max_new_tokens, self.config.max_response_tokens - len(episode.response_ids))

    def _play_turn(
        self,
        pool: EnvPool,
        live: list[_Episode],
        rows: list[Row],
        generator: torch.Generator,
        *,
        last_turn: bool,
        policy: ScriptedPolicy | None = None,
    ) -> None:
        """One batched generation for every live episode, then one batched env step."""
        playing, prompts, budgets = [], [], []
        for episode in live:
            ids, budget = self._prompt_ids(episode), self._budget(episode)
            if ids is None or budget < 1:
                episode.stop(truncated=True)
                continue
            playing.append(episode)
            prompts.append(ids)
            budgets.append(budget)
        if not playing:
            return
        if policy is not None:
            generations = [self._scripted(text) for text in policy(pool, [e.slot for e in playing])]
        else:
            generations = self._generate(prompts, budgets, generator)
        texts = [self._response_text(g) for g in generations]
        actions: list[str | None] = [None] * len(pool)
        for episode, text in zip(playing, texts, strict=True):
            actions[episode.slot] = text
        results = pool.step(actions)
        for episode, prompt, generation, text in zip(playing, prompts, generations, texts, strict=True):
            self._apply(episode, prompt, generation, text, results[episode.slot], rows, last_turn=last_turn)

    def _generate(
        self, prompts: list[list[int]], budgets: list[int], generator: torch.Generator
    ) -> list[Generation]:
        cfg = self.config
        return generate(
            self.model,
            prompts,
            max_new_tokens=budgets,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_ids=self.eos_token_ids,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            stop=cfg.stop,
            tokenizer=self.tokenizer,
            generator=generator,
            decode=cfg.decode,
        )

    def _scripted(self, text: str) -> Generation:
        """A scripted response as if sampled: its tokens, ending like the model would end it
        (at a stop string, else with EOS), and zero log-probs."""
        ids = encode(self.tokenizer, text)
        if any(text.endswith(s) for s in self.config.stop):
            reason = "stop"
        else:
            eos = self.tokenizer.eos_token_id
            ids, reason = [*ids, eos if eos is not None else self.eos_token_ids[0]], "eos"
        zeros = [0.0] * len(ids)
        return Generation(token_ids=ids, logprobs=zeros, sampling_logprobs=list(zeros), finish_reason=reason)

    def _response_text(self, generation: Generation) -> str:
        """What the environment receives: the generated text without a final EOS token."""
        ids = generation.token_ids[:-1] if generation.finish_reason == "eos" else generation.token_ids
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def _apply(
        self,
        episode: _Episode,
        prompt: list[int],
        generation: Generation,
        text: str,
        result: StepResult,
        rows: list[Row],
        *,
        last_turn: bool,
    ) -> None:
        """Account for one turn, store its tokens and move the episode to the new observation."""
        self._account(episode.record, generation, result)
        self._store_tokens(episode, prompt, generation, result, rows)
        episode.history.append((episode.observation, history_action(text)))
        episode.observation = result.observation
        episode.anchor = str(result.info.get("anchor_obs", result.observation))
        episode.admissible = result.info.get("admissible_actions", episode.admissible)
        if result.done or last_turn:
            episode.stop()
            return
        self._continue_chat(episode, generation, text)

    @staticmethod
    def _account(record: TrajectoryRecord, generation: Generation, result: StepResult) -> None:
        info = result.info
        record.finish_reasons.append(generation.finish_reason)
        record.truncated = record.truncated or generation.finish_reason == "length"
        record.turns += 1
        record.tool_calls += int(info.get("tool_calls", 0))
        record.invalid_actions += int(bool(info.get("invalid_action", False)))
        record.format_errors += int(_format_error(info))
        record.won, record.score = bool(info.get("won", False)), float(info.get("score", 0.0))
        record.env_reward += float(result.reward)
        record.done = bool(result.done)
        if info.get("failed"):
            record.failed = True
            record.error = str(info.get("env_traceback") or info.get("env_error", "environment failure"))

    def _store_tokens(
        self,
        episode: _Episode,
        prompt: list[int],
        generation: Generation,
        result: StepResult,
        rows: list[Row],
    ) -> None:
        """Turn layout: a new row. Trajectory layout: append the sampled ids (mask 1)."""
        ids, logprobs, sampling = generation.token_ids, generation.logprobs, generation.sampling_logprobs
        if self.config.layout == "turn":
            meta = self._turn_meta(episode, generation, result)
            rows.append(Row(prompt, ids, [1] * len(ids), logprobs, sampling, meta))
            episode.record.rows.append(len(rows) - 1)
        else:
            self._extend(episode, ids, [1] * len(ids), logprobs, sampling)

    def _turn_meta(self, episode: _Episode, generation: Generation, result: StepResult) -> dict[str, Any]:
        return {
            "group_id": episode.record.group_id,
            "traj_id": episode.record.traj_id,
            "traj_index": episode.slot,
            "turn_index": episode.record.turns - 1,
            "anchor_obs": episode.anchor,
            "step_reward": float(result.reward),
            "invalid_action": bool(result.info.get("invalid_action", False)),
            "format_error": _format_error(result.info),
            "tool_calls": int(result.info.get("tool_calls", 0)),
            "env_done": bool(result.done),
            "is_last_turn": False,
            "finish_reason": generation.finish_reason,
            "failed": False,
        }

    @staticmethod
    def _extend(
        episode: _Episode, ids: list[int], mask: list[int], logprobs: list[float], sampling: list[float]
    ) -> None:
        episode.response_ids += ids
        episode.response_mask += mask
        episode.logprobs += logprobs
        episode.sampling_logprobs += sampling

    def _observation_messages(self, episode: _Episode) -> list[Message]:
        if episode.action_format == "tool_call":
            return [{"role": "tool", "content": episode.observation}]
        cfg = self.config
        prompt = react_followup_prompt(
            observation=episode.observation,
            step=episode.record.turns + 1,
            admissible=episode.admissible,
            show_admissible=cfg.show_admissible,
            max_admissible=cfg.max_admissible,
            style=cfg.prompt_style,
        )
        return [{"role": "user", "content": prompt}]

    def _continue_chat(self, episode: _Episode, generation: Generation, text: str) -> None:
        """Append the assistant turn and the observation to the chat (and, in the
        trajectory layout, the template text between them to the token sequence)."""
        if episode.action_format == "react" and self.config.layout == "turn":
            return  # react turn prompts are rebuilt from the history every turn
        new_messages = self._observation_messages(episode)
        if self.config.layout == "trajectory":
            delta = template_delta(self.tokenizer, episode.messages, text, new_messages, episode.tools)
            eos_text = (
                self._eos_texts.get(generation.token_ids[-1]) if generation.finish_reason == "eos" else None
            )
            if eos_text and delta.startswith(eos_text):
                delta = delta[len(eos_text) :]  # the sampled EOS token already closes the turn
            delta_ids = encode(self.tokenizer, delta)
            if len(episode.response_ids) + len(delta_ids) >= self.config.max_response_tokens:
                episode.stop(truncated=True)
                return
            self._extend(
                episode, delta_ids, [0] * len(delta_ids), [0.0] * len(delta_ids), [0.0] * len(delta_ids)
            )
        episode.messages = [*episode.messages, {"role": "assistant", "content": text}, *new_messages]

    # -- output -------------------------------------------------------------
    def _build_batch(self, episodes: list[_Episode], turn_rows: list[Row]) -> RolloutBatch:
        records = [e.record for e in episodes]
        if self.config.layout == "turn":
            rows = turn_rows
            for record in records:
                for r in record.rows:
                    rows[r].meta["failed"] = record.failed
                if record.rows:
                    rows[record.rows[-1]].meta["is_last_turn"] = True
        else:
            rows = []
            for episode in episodes:
                if episode.record.turns:
                    episode.record.rows = [len(rows)]
                    rows.append(self._trajectory_row(episode))
        return RolloutBatch.from_rows(
            rows, records, pad_token_id=self.tokenizer.pad_token_id, layout=self.config.layout
        )

    @staticmethod
    def _trajectory_row(episode: _Episode) -> Row:
        record = episode.record
        meta = {
            "group_id": record.group_id,
            "traj_id": record.traj_id,
            "traj_index": episode.slot,
            "turn_index": record.turns - 1,
            "anchor_obs": episode.first_anchor,
            "step_reward": record.env_reward,
            "invalid_action": record.invalid_actions > 0,
            "format_error": record.format_errors > 0,
            "tool_calls": record.tool_calls,
            "env_done": record.done,
            "is_last_turn": True,
            "finish_reason": record.finish_reasons[-1],
            "failed": record.failed,
        }
        return Row(
            episode.prompt_ids,
            episode.response_ids,
            episode.response_mask,
            episode.logprobs,
            episode.sampling_logprobs,
            meta,
        )


def _format_error(info: dict[str, Any]) -> bool:
    """Whether a step's response failed the action format (spec 3.10). An environment that
    reports no ``format_error`` (written before it existed) means its ``invalid_action``."""
    return bool(info.get("format_error", info.get("invalid_action", False)))
