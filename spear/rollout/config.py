"""Rollout configuration (spec 2.2 step 1, 4.1, 4.4, 7.1; docs/ROLLOUT.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spear.rollout.generation import DECODERS
from spear.rollout.prompts import check_prompt_style

LAYOUTS: tuple[str, ...] = ("turn", "trajectory")


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RolloutConfig:
    """How to roll out (defaults follow the agent scripts, spec 2.2 and 7.1).

    Args:
        group_size: copies per task seed (G).
        max_turns: turn cap; None = the environment's ``max_turns``.
        max_new_tokens: tokens sampled per turn.
        temperature: sampling temperature; 0 = greedy.
        top_p: nucleus mass.
        stop: strings that end a turn (the token completing one is kept).
        history_length: observation/action pairs shown in react prompts (turn layout).
        layout: ``"turn"`` (row per turn) or ``"trajectory"`` (row per episode).
        max_prompt_tokens: longest prompt (turn layout: each turn's; trajectory
            layout: the first one). A longer prompt ends the episode, truncated.
        max_response_tokens: trajectory layout only: budget of generated plus
            observation tokens after the first prompt; reaching it ends the episode, truncated.
        show_admissible: list the admissible actions in react prompts.
        prompt_style: ``"full"`` (verl-agent's template, spec 4.1) or ``"compact"``
            (the same content in fewer tokens); see :mod:`spear.rollout.prompts`.
        max_admissible: show at most this many admissible actions (None = all).
        system_prompt: optional system message of every episode.
        seed: sampling seed; ``collect`` at the same ``step`` reproduces its samples.
        decode: the decoder (:data:`spear.rollout.generation.DECODERS`): ``"eager"`` (the
            reference), ``"static"`` or ``"compiled"`` (fixed shapes, for a GPU); all three
            sample the same tokens (docs/ROLLOUT.md).
    """

    group_size: int = 8
    max_turns: int | None = None
    max_new_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ("</action>", "</tool_call>")
    history_length: int = 2
    layout: str = "turn"
    max_prompt_tokens: int = 4096
    max_response_tokens: int = 8192
    show_admissible: bool = True
    prompt_style: str = "full"
    max_admissible: int | None = None
    system_prompt: str | None = None
    seed: int = 0
    decode: str = "eager"

    def __post_init__(self) -> None:
        _positive_int("group_size", self.group_size)
        _positive_int("max_turns", self.max_turns, allow_none=True)
        _positive_int("max_new_tokens", self.max_new_tokens)
        _positive_int("max_prompt_tokens", self.max_prompt_tokens)
        _positive_int("max_response_tokens", self.max_response_tokens)
        _positive_int("max_admissible", self.max_admissible, allow_none=True)
        if not isinstance(self.temperature, (int, float)) or not self.temperature >= 0:
            raise ValueError(f"temperature must be a number >= 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.history_length, int) or self.history_length < 0:
            raise ValueError(f"history_length must be an integer >= 0, got {self.history_length!r}")
        check_prompt_style(self.prompt_style)
        if self.decode not in DECODERS:
            raise ValueError(f"decode must be one of {DECODERS}, got {self.decode!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise ValueError(f"stop must be a sequence of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", stop)
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ValueError("system_prompt must be a string or None")
