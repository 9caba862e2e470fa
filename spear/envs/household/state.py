"""The mutable world of one episode: where the agent and things are, and the commands.

Commands and observation texts follow ALFWorld's text interface (spec 4.1):
``go to``, ``open``, ``close``, ``take X from Y``, ``move X to Y``,
``examine``, ``use``, ``heat/cool/clean X with Y``, ``look``, ``inventory``.
The agent carries at most one object. A receptacle's contents are only shown
once the agent is at it and it is open (or has no door); ``revealed`` records
which contents the agent has seen, which is all the scripted expert may use.
"""

from __future__ import annotations

from spear.envs.household.catalog import APPLIANCE, LOOK, OBJECT_KINDS, PICK_TWO, RECEPTACLE_KINDS
from spear.envs.household.world import Scenario, is_lamp, kind_of

# Appliance kind -> (verb, object state it sets, state it removes, property it needs).
_OPERATIONS: dict[str, tuple[str, str, str | None, str]] = {
    "microwave": ("heat", "hot", "cold", "heatable"),
    "fridge": ("cool", "cold", "hot", "coolable"),
    "sinkbasin": ("clean", "clean", None, "cleanable"),
}

Command = tuple[str, ...]


def listing(names: list[str]) -> str:
    """ALFWorld's enumeration: ``"a apple 1, and a knife 2"``; ``"nothing"`` when empty."""
    if not names:
        return "nothing"
    phrases = [f"a {name}" for name in names]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + ", and " + phrases[-1]


class HouseholdState:
    """The world state of an episode, with the admissible commands and their effects."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.location: str | None = None  # None: the middle of the room
        self.holding: str | None = None
        self.where: dict[str, str] = {item.name: item.location for item in scenario.items}
        self.contents: dict[str, list[str]] = {r: [] for r in scenario.receptacles}
        for item in scenario.items:
            self.contents[item.location].append(item.name)
        self.opened: set[str] = set()
        self.revealed: set[str] = set()
        self.status: dict[str, set[str]] = {item.name: set() for item in scenario.items}
        self.lamps_on: set[str] = set()

    # -- perception ---------------------------------------------------------------

    def openable(self, receptacle: str) -> bool:
        return RECEPTACLE_KINDS[kind_of(receptacle)].openable

    def accessible(self, receptacle: str) -> bool:
        return not self.openable(receptacle) or receptacle in self.opened

    def describe(self, receptacle: str) -> str:
        """What the agent sees at ``receptacle``; seeing the contents reveals them."""
        if not self.accessible(receptacle):
            return f"The {receptacle} is closed."
        self.revealed.add(receptacle)
        things = listing(sorted(self.contents[receptacle]))
        if self.openable(receptacle):
            return f"The {receptacle} is open. In it, you see {things}."
        prep = RECEPTACLE_KINDS[kind_of(receptacle)].preposition.capitalize()
        return f"{prep} the {receptacle}, you see {things}."

    def room_description(self) -> str:
        return (
            "You are in the middle of a room. Looking quickly around you, you see "
            f"{listing(list(self.scenario.receptacles))}."
        )

    def known_locations(self) -> dict[str, str]:
        """Where the agent has seen each item (held ones: ``"inventory"``); unseen items are absent."""
        known = {item: r for r in self.revealed for item in self.contents[r]}
        if self.holding is not None:
            known[self.holding] = "inventory"
        return known

    # -- commands -----------------------------------------------------------------

    def commands(self) -> dict[str, Command]:
        """Admissible command text -> parsed command, for the current state."""
        commands: dict[str, Command] = {"look": ("look",), "inventory": ("inventory",)}
        for receptacle in self.scenario.receptacles:
            if receptacle != self.location:
                commands[f"go to {receptacle}"] = ("go", receptacle)
        if self.holding is not None:
            commands[f"examine {self.holding}"] = ("examine_item", self.holding)
        if self.location is not None:
            commands.update(self._commands_here(self.location))
        return commands

    def _commands_here(self, here: str) -> dict[str, Command]:
        commands: dict[str, Command] = {f"examine {here}": ("examine", here)}
        if self.openable(here):
            verb = "close" if here in self.opened else "open"
            commands[f"{verb} {here}"] = (verb, here)
        if self.accessible(here):
            for thing in self.contents[here]:
                if is_lamp(thing):
                    commands[f"use {thing}"] = ("use", thing)
                elif self.holding is None:
                    commands[f"take {thing} from {here}"] = ("take", thing, here)
            if self.holding is not None:
                commands[f"move {self.holding} to {here}"] = ("move", self.holding, here)
        operation = _OPERATIONS.get(kind_of(here))
        if self.holding is not None and operation is not None:
            verb, _, _, prop = operation
            if getattr(OBJECT_KINDS[kind_of(self.holding)], prop):
                commands[f"{verb} {self.holding} with {here}"] = ("operate", self.holding, here)
        return commands

    def apply(self, command: Command) -> str:
        """Carry out an admissible command and return the observation text."""
        verb, *args = command
        return getattr(self, f"_do_{verb}")(*args)

    def _do_look(self) -> str:
        if self.location is None:
            return self.room_description()
        return f"You are facing the {self.location}. {self.describe(self.location)}"

    def _do_inventory(self) -> str:
        if self.holding is None:
            return "You are not carrying anything."
        return f"You are carrying: a {self.holding}."

    def _do_go(self, receptacle: str) -> str:
        self.location = receptacle
        return f"You arrive at {receptacle}. {self.describe(receptacle)}"

    def _do_examine(self, receptacle: str) -> str:
        return self.describe(receptacle)

    def _do_examine_item(self, item: str) -> str:
        states = sorted(self.status[item])
        if not states:
            return f"There's nothing special about {item}."
        return f"The {item} is {' and '.join(states)}."

    def _do_open(self, receptacle: str) -> str:
        self.opened.add(receptacle)
        return f"You open the {receptacle}. {self.describe(receptacle)}"

    def _do_close(self, receptacle: str) -> str:
        self.opened.discard(receptacle)
        return f"You close the {receptacle}."

    def _do_take(self, item: str, receptacle: str) -> str:
        self.contents[receptacle].remove(item)
        self.where[item] = "inventory"
        self.holding = item
        return f"You pick up the {item} from the {receptacle}."

    def _do_move(self, item: str, receptacle: str) -> str:
        self.contents[receptacle].append(item)
        self.where[item] = receptacle
        self.holding = None
        return f"You move the {item} to the {receptacle}."

    def _do_use(self, lamp: str) -> str:
        if lamp in self.lamps_on:
            self.lamps_on.discard(lamp)
            return f"You turn off the {lamp}."
        self.lamps_on.add(lamp)
        return f"You turn on the {lamp}."

    def _do_operate(self, item: str, appliance: str) -> str:
        verb, gained, lost, _ = _OPERATIONS[kind_of(appliance)]
        self.status[item].add(gained)
        self.status[item].discard(lost or "")
        return f"You {verb} the {item} using the {appliance}."

    # -- goal -----------------------------------------------------------------------

    def satisfies(self, item: str) -> bool:
        """Whether ``item`` counts towards a placing goal where it is now."""
        goal = self.scenario.goal
        if kind_of(item) != goal.object_kind or self.where[item] != goal.target:
            return False
        needed = APPLIANCE.get(goal.task_type)
        return needed is None or needed[2] in self.status[item]

    def goal_met(self) -> bool:
        goal = self.scenario.goal
        if goal.task_type == LOOK:
            return (
                self.holding is not None
                and kind_of(self.holding) == goal.object_kind
                and goal.lamp in self.lamps_on
                and self.location == self.where[goal.lamp or ""]
            )
        needed = 2 if goal.task_type == PICK_TWO else 1
        return sum(self.satisfies(item) for item in self.contents[goal.target or ""]) >= needed
