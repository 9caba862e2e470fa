"""The scripted expert: a systematic searcher, not an oracle.

It knows the goal (from the instruction), the room layout (from the first
observation) and only the contents of receptacles the agent has already seen
(:meth:`HouseholdState.known_locations`). To find something it visits unseen
receptacles in a fixed order, those that can hold the thing first and doorless
ones before ones it must open, opening closed ones on arrival. It works from
any state, so it can take over mid-episode.
"""

from __future__ import annotations

from collections.abc import Callable

from spear.envs.household.catalog import APPLIANCE, LAMP_HOSTS, LOOK, OBJECT_KINDS, RECEPTACLE_KINDS
from spear.envs.household.state import HouseholdState
from spear.envs.household.world import kind_of

Move = tuple[str, str]  # (action, think)


def expert_move(state: HouseholdState) -> Move:
    """The expert's next (action, think) in ``state``."""
    goal = state.scenario.goal
    if state.holding is not None and kind_of(state.holding) != goal.object_kind:
        return _put_down(state, state.holding)
    if goal.task_type == LOOK:
        return _look(state)
    return _place(state)


def _place(state: HouseholdState) -> Move:
    goal = state.scenario.goal
    target = goal.target or ""
    item = state.holding
    if item is None:
        return _fetch(state, goal.object_kind, skip=state.satisfies)
    operation = APPLIANCE.get(goal.task_type)
    if operation is not None and operation[2] not in state.status[item]:
        appliance, verb, quality = operation
        if state.location != appliance:
            return f"go to {appliance}", f"The {item} must be {quality}. Next I go to {appliance}."
        return f"{verb} {item} with {appliance}", f"I {verb} the {item} with the {appliance}."
    if state.location != target:
        return f"go to {target}", f"I have the {item}. Next I go to {target}."
    if not state.accessible(target):
        return f"open {target}", f"The {target} is closed. I open it to put the {item} in."
    prep = RECEPTACLE_KINDS[kind_of(target)].preposition
    return f"move {item} to {target}", f"I put the {item} {prep} the {target}."


def _look(state: HouseholdState) -> Move:
    goal = state.scenario.goal
    item = state.holding
    if item is None:
        return _fetch(state, goal.object_kind, skip=lambda _: False)
    lamp = goal.lamp or ""
    where = state.known_locations().get(lamp)
    if where is None:
        hosts = set(LAMP_HOSTS[kind_of(lamp)])
        return _search(state, f"the {kind_of(lamp)}", lambda r: kind_of(r) in hosts)
    if state.location != where:
        return f"go to {where}", f"I have the {item}. The {lamp} is at {where}; I go there."
    return f"use {lamp}", f"I turn on the {lamp} to look at the {item} under it."


def _fetch(state: HouseholdState, kind: str, skip: Callable[[str], bool]) -> Move:
    """Take the first known object of ``kind`` not excluded by ``skip``, or search for one."""
    known = state.known_locations()
    for item in sorted(known):
        where = known[item]
        if kind_of(item) == kind and where != "inventory" and not skip(item):
            return _take(state, item, where)
    category = OBJECT_KINDS[kind].category
    return _search(state, f"a {kind}", lambda r: category in RECEPTACLE_KINDS[kind_of(r)].holds)


def _take(state: HouseholdState, item: str, where: str) -> Move:
    if state.location != where:
        return f"go to {where}", f"I saw a {item} at {where}. Next I go there."
    if not state.accessible(where):
        return f"open {where}", f"The {item} is in the closed {where}. I open it."
    return f"take {item} from {where}", f"Here is the {item}. I take it."


def _search(state: HouseholdState, what: str, likely: Callable[[str], bool]) -> Move:
    """Next step of a search: open the unseen receptacle here, or go to the next unseen one."""
    unseen = [r for r in state.scenario.receptacles if r not in state.revealed]
    if not unseen:
        return "look", f"I cannot find {what} anywhere. I look around."
    here = state.location
    if here in unseen and state.openable(here or ""):
        return f"open {here}", f"I need to find {what}. The {here} is closed, so I open it."
    order = sorted(unseen, key=lambda r: (not likely(r), state.openable(r)))
    return f"go to {order[0]}", f"I need to find {what}. Next I check {order[0]}."


def _put_down(state: HouseholdState, item: str) -> Move:
    """Free the hands (capacity one) of an object the task does not need."""
    here = state.location
    if here is None:
        first = state.scenario.receptacles[0]
        return f"go to {first}", f"I do not need the {item}. I go to {first} to put it down."
    if not state.accessible(here):
        return f"open {here}", f"I do not need the {item}. I open the {here} to put it down."
    return f"move {item} to {here}", f"I do not need the {item}. I put it down here."
