"""The data model of a household task: a room layout, where things start, and the goal.

A :class:`Scenario` is immutable and fully describes an episode's start (spec
4.1: one ALFWorld task instance). Its :meth:`Scenario.signature` is the
canonical content used by :func:`spear.envs.base.task_split` to keep train and
eval tasks disjoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from spear.envs.household.catalog import (
    APPLIANCE,
    CLEAN,
    COOL,
    HEAT,
    LAMP_HOSTS,
    LOOK,
    OBJECT_KINDS,
    PICK,
    PICK_TWO,
    RECEPTACLE_KINDS,
    TASK_TYPES,
)


def kind_of(name: str) -> str:
    """``"cabinet 12"`` -> ``"cabinet"``."""
    return name.rsplit(" ", 1)[0]


def is_lamp(name: str) -> bool:
    return kind_of(name) in LAMP_HOSTS


@dataclass(frozen=True)
class Item:
    """A numbered object (``"apple 1"``) or lamp (``"desklamp 1"``) and the receptacle it starts in."""

    name: str
    location: str

    @property
    def kind(self) -> str:
        return kind_of(self.name)


@dataclass(frozen=True)
class Goal:
    """What must hold for the task to be won.

    ``target`` is the receptacle to put the object(s) in (None for look tasks);
    ``lamp`` is the lamp to look under (look tasks only).
    """

    task_type: str
    object_kind: str
    target: str | None = None
    lamp: str | None = None


_PHRASINGS: dict[str, tuple[str, str]] = {
    PICK: ("put a {obj} {prep} {target}.", "put some {obj} {prep} {target}."),
    PICK_TWO: ("put two {obj} {prep} {target}.", "find two {obj} and put them {prep} {target}."),
    LOOK: ("look at {obj} under the {lamp}.", "examine the {obj} with the {lamp}."),
    HEAT: ("heat some {obj} and put it {prep} {target}.", "put a hot {obj} {prep} {target}."),
    COOL: ("cool some {obj} and put it {prep} {target}.", "put a cool {obj} {prep} {target}."),
    CLEAN: ("clean some {obj} and put it {prep} {target}.", "put a clean {obj} {prep} {target}."),
}
NUM_PHRASINGS = 2


@dataclass(frozen=True)
class Scenario:
    """One task instance: room type, receptacles, items with start locations, goal.

    ``phrasing`` picks one of the instruction wordings; it is not part of the
    signature, so two wordings of the same task land in the same split.
    """

    room: str
    receptacles: tuple[str, ...]
    items: tuple[Item, ...]
    goal: Goal
    phrasing: int = 0

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        """Reject inconsistent hand-built scenarios early, with the offending field named."""
        if len(set(self.receptacles)) != len(self.receptacles):
            raise ValueError("receptacles: names must be unique")
        for name in self.receptacles:
            if kind_of(name) not in RECEPTACLE_KINDS:
                raise ValueError(f"receptacles: unknown receptacle kind in {name!r}")
        names = [item.name for item in self.items]
        if len(set(names)) != len(names):
            raise ValueError("items: names must be unique")
        for item in self.items:
            if item.kind not in OBJECT_KINDS and not is_lamp(item.name):
                raise ValueError(f"items: unknown object kind in {item.name!r}")
            if item.location not in self.receptacles:
                raise ValueError(f"items: {item.name!r} is in unknown receptacle {item.location!r}")
        self._check_goal(set(names))
        if not 0 <= self.phrasing < NUM_PHRASINGS:
            raise ValueError(f"phrasing must be in [0, {NUM_PHRASINGS}), got {self.phrasing}")

    def _check_goal(self, names: set[str]) -> None:
        goal = self.goal
        if goal.task_type not in TASK_TYPES:
            raise ValueError(f"goal.task_type must be one of {TASK_TYPES}, got {goal.task_type!r}")
        if goal.object_kind not in OBJECT_KINDS:
            raise ValueError(f"goal.object_kind: unknown object kind {goal.object_kind!r}")
        if goal.task_type == LOOK:
            if goal.lamp not in names or not is_lamp(goal.lamp or ""):
                raise ValueError(f"goal.lamp must name a lamp among the items, got {goal.lamp!r}")
        elif goal.target not in self.receptacles:
            raise ValueError(f"goal.target must name a receptacle, got {goal.target!r}")
        if goal.task_type in APPLIANCE and APPLIANCE[goal.task_type][0] not in self.receptacles:
            raise ValueError(f"goal: {goal.task_type} needs {APPLIANCE[goal.task_type][0]} in the room")

    @property
    def task_text(self) -> str:
        """The goal in words, e.g. ``"put a clean apple in fridge 1."``."""
        goal = self.goal
        template = _PHRASINGS[goal.task_type][self.phrasing]
        prep = RECEPTACLE_KINDS[kind_of(goal.target)].preposition if goal.target else ""
        lamp = kind_of(goal.lamp) if goal.lamp else ""
        return template.format(obj=goal.object_kind, prep=prep, target=goal.target, lamp=lamp)

    @property
    def instruction(self) -> str:
        """The task as prompts quote it (``"Your task is to: {instruction}"``)."""
        return self.task_text

    def signature(self) -> str:
        """Canonical JSON of the task and layout (wording excluded)."""
        content = {
            "room": self.room,
            "goal": [self.goal.task_type, self.goal.object_kind, self.goal.target, self.goal.lamp],
            "receptacles": sorted(self.receptacles),
            "items": sorted([item.name, item.location] for item in self.items),
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"))
