"""Static household knowledge: rooms, receptacle kinds and object kinds.

The inventory imitates ALFWorld's (spec 4.1): kitchens with a fridge,
microwave and sink, bathrooms, bedrooms and living rooms with lamps. Object
kinds carry the properties the six task types test (heatable, coolable,
cleanable); receptacle kinds say which object categories they hold, so objects
spawn, and goals ask for them, only in plausible places.
"""

from __future__ import annotations

from dataclasses import dataclass

PICK = "pick_and_place"
PICK_TWO = "pick_two_obj_and_place"
LOOK = "look_at_obj_in_light"
HEAT = "pick_heat_then_place_in_recep"
COOL = "pick_cool_then_place_in_recep"
CLEAN = "pick_clean_then_place_in_recep"
TASK_TYPES: tuple[str, ...] = (PICK, PICK_TWO, LOOK, HEAT, COOL, CLEAN)

# The appliance each transforming task uses, with the verb and the object state it sets.
APPLIANCE: dict[str, tuple[str, str, str]] = {
    HEAT: ("microwave 1", "heat", "hot"),
    COOL: ("fridge 1", "cool", "cold"),
    CLEAN: ("sinkbasin 1", "clean", "clean"),
}


@dataclass(frozen=True)
class ReceptacleKind:
    """A kind of furniture/appliance: whether it has a door, what it holds, how many a room may have."""

    openable: bool
    holds: frozenset[str]
    max_count: int
    preposition: str  # "in" or "on", for goal text and contents text


@dataclass(frozen=True)
class ObjectKind:
    category: str
    heatable: bool = False
    coolable: bool = False
    cleanable: bool = False


def _holds(*categories: str) -> frozenset[str]:
    return frozenset(categories)


_ALL_PORTABLE = ("food", "dish", "cookware", "utensil", "bottle", "toiletry", "gadget", "decor")

RECEPTACLE_KINDS: dict[str, ReceptacleKind] = {
    "armchair": ReceptacleKind(False, _holds("gadget", "decor", "soft"), 1, "on"),
    "bathtubbasin": ReceptacleKind(False, _holds("toiletry"), 1, "in"),
    "bed": ReceptacleKind(False, _holds("gadget", "decor", "soft"), 1, "on"),
    "cabinet": ReceptacleKind(
        True, _holds("dish", "cookware", "bottle", "toiletry", "gadget", "decor"), 15, "in"
    ),
    "coffeemachine": ReceptacleKind(False, _holds("dish"), 1, "on"),
    "coffeetable": ReceptacleKind(False, _holds("gadget", "decor", "dish"), 1, "on"),
    "countertop": ReceptacleKind(False, _holds(*_ALL_PORTABLE), 4, "on"),
    "desk": ReceptacleKind(False, _holds("gadget", "decor", "dish"), 1, "on"),
    "diningtable": ReceptacleKind(False, _holds(*_ALL_PORTABLE), 1, "on"),
    "drawer": ReceptacleKind(True, _holds("utensil", "gadget", "toiletry"), 15, "in"),
    "dresser": ReceptacleKind(False, _holds("gadget", "decor", "toiletry"), 1, "on"),
    "fridge": ReceptacleKind(True, _holds("food", "dish", "bottle", "cookware"), 1, "in"),
    "garbagecan": ReceptacleKind(False, _holds("food", "bottle", "gadget", "toiletry"), 1, "in"),
    "microwave": ReceptacleKind(True, _holds("food", "dish"), 1, "in"),
    "safe": ReceptacleKind(True, _holds("gadget"), 1, "in"),
    "shelf": ReceptacleKind(False, _holds("dish", "bottle", "toiletry", "gadget", "decor"), 8, "on"),
    "sidetable": ReceptacleKind(False, _holds("gadget", "decor", "dish"), 2, "on"),
    "sinkbasin": ReceptacleKind(False, _holds("food", "dish", "cookware", "utensil", "toiletry"), 1, "in"),
    "sofa": ReceptacleKind(False, _holds("gadget", "decor", "soft"), 1, "on"),
    "stoveburner": ReceptacleKind(False, _holds("cookware"), 4, "on"),
    "toilet": ReceptacleKind(False, _holds("toiletry"), 1, "on"),
    "tvstand": ReceptacleKind(False, _holds("gadget", "decor"), 1, "on"),
}

_HCC = {"heatable": True, "coolable": True, "cleanable": True}

OBJECT_KINDS: dict[str, ObjectKind] = {
    "alarmclock": ObjectKind("gadget"),
    "apple": ObjectKind("food", **_HCC),
    "book": ObjectKind("decor"),
    "bowl": ObjectKind("dish", coolable=True, cleanable=True),
    "box": ObjectKind("decor"),
    "bread": ObjectKind("food", heatable=True, coolable=True),
    "butterknife": ObjectKind("utensil", cleanable=True),
    "candle": ObjectKind("toiletry"),
    "cd": ObjectKind("gadget"),
    "cellphone": ObjectKind("gadget"),
    "cloth": ObjectKind("toiletry", cleanable=True),
    "creditcard": ObjectKind("gadget"),
    "cup": ObjectKind("dish", **_HCC),
    "dishsponge": ObjectKind("toiletry", cleanable=True),
    "egg": ObjectKind("food", **_HCC),
    "fork": ObjectKind("utensil", cleanable=True),
    "kettle": ObjectKind("cookware", cleanable=True),
    "keychain": ObjectKind("gadget"),
    "knife": ObjectKind("utensil", cleanable=True),
    "ladle": ObjectKind("utensil", cleanable=True),
    "laptop": ObjectKind("decor"),
    "lettuce": ObjectKind("food", coolable=True, cleanable=True),
    "mug": ObjectKind("dish", **_HCC),
    "newspaper": ObjectKind("decor"),
    "pan": ObjectKind("cookware", coolable=True, cleanable=True),
    "pen": ObjectKind("gadget"),
    "pencil": ObjectKind("gadget"),
    "peppershaker": ObjectKind("bottle"),
    "pillow": ObjectKind("soft"),
    "plate": ObjectKind("dish", **_HCC),
    "pot": ObjectKind("cookware", coolable=True, cleanable=True),
    "potato": ObjectKind("food", **_HCC),
    "remotecontrol": ObjectKind("gadget"),
    "saltshaker": ObjectKind("bottle"),
    "soapbar": ObjectKind("toiletry", cleanable=True),
    "soapbottle": ObjectKind("bottle"),
    "spatula": ObjectKind("utensil", cleanable=True),
    "spoon": ObjectKind("utensil", cleanable=True),
    "spraybottle": ObjectKind("toiletry"),
    "statue": ObjectKind("decor"),
    "tomato": ObjectKind("food", **_HCC),
    "toiletpaper": ObjectKind("toiletry"),
    "vase": ObjectKind("decor"),
    "watch": ObjectKind("gadget"),
    "winebottle": ObjectKind("bottle"),
}

# Lamps are fixtures: they sit on a receptacle, can be used (switched) but not taken.
LAMP_HOSTS: dict[str, tuple[str, ...]] = {
    "desklamp": ("desk", "dresser", "sidetable"),
    "floorlamp": ("armchair", "bed", "sofa"),
}


def _kinds(names: str) -> tuple[str, ...]:
    return tuple(names.split())


@dataclass(frozen=True)
class RoomKind:
    """What a room type contains.

    ``core``: receptacles every such room has; ``fillers``: (kind, weight) drawn
    to reach the requested receptacle count; ``objects``: object kinds found there.
    """

    core: tuple[str, ...]
    fillers: tuple[tuple[str, int], ...]
    objects: tuple[str, ...]

    @property
    def lamp_hosts(self) -> tuple[str, ...]:
        kinds = {kind for kind, _ in self.fillers} | set(self.core)
        return tuple(sorted(h for hosts in LAMP_HOSTS.values() for h in hosts if h in kinds))


ROOMS: dict[str, RoomKind] = {
    "kitchen": RoomKind(
        core=("fridge", "microwave", "sinkbasin"),
        fillers=(
            ("cabinet", 6),
            ("drawer", 4),
            ("countertop", 4),
            ("stoveburner", 2),
            ("diningtable", 2),
            ("coffeemachine", 1),
            ("garbagecan", 1),
            ("shelf", 1),
        ),
        objects=_kinds(
            "apple bread egg lettuce potato tomato mug cup plate bowl pan pot kettle knife fork "
            "spoon spatula ladle butterknife saltshaker peppershaker winebottle soapbottle "
            "dishsponge"
        ),
    ),
    "bathroom": RoomKind(
        core=("sinkbasin",),
        fillers=(
            ("cabinet", 4),
            ("drawer", 3),
            ("countertop", 2),
            ("shelf", 2),
            ("toilet", 1),
            ("bathtubbasin", 1),
            ("garbagecan", 1),
        ),
        objects=_kinds("soapbar cloth candle spraybottle toiletpaper soapbottle dishsponge"),
    ),
    "bedroom": RoomKind(
        core=(),
        fillers=(
            ("drawer", 4),
            ("shelf", 3),
            ("sidetable", 2),
            ("bed", 1),
            ("desk", 1),
            ("dresser", 1),
            ("safe", 1),
            ("garbagecan", 1),
            ("armchair", 1),
        ),
        objects=_kinds(
            "alarmclock book cd cellphone creditcard keychain laptop pen pencil pillow mug bowl statue vase"
        ),
    ),
    "livingroom": RoomKind(
        core=(),
        fillers=(
            ("drawer", 3),
            ("cabinet", 3),
            ("shelf", 3),
            ("sidetable", 2),
            ("sofa", 1),
            ("armchair", 1),
            ("coffeetable", 1),
            ("tvstand", 1),
            ("dresser", 1),
            ("garbagecan", 1),
        ),
        objects=_kinds(
            "box creditcard keychain laptop newspaper pillow remotecontrol statue vase watch book bowl plate"
        ),
    ),
}

# Rooms where each task type makes sense: transforming tasks need their appliance,
# look tasks a lamp.
TASK_ROOMS: dict[str, tuple[str, ...]] = {
    PICK: ("kitchen", "bathroom", "bedroom", "livingroom"),
    PICK_TWO: ("kitchen", "bathroom", "bedroom", "livingroom"),
    LOOK: ("bedroom", "livingroom"),
    HEAT: ("kitchen",),
    COOL: ("kitchen",),
    CLEAN: ("kitchen", "bathroom"),
}


def has_property(kind: str, task_type: str) -> bool:
    """Whether objects of ``kind`` can be transformed as ``task_type`` requires."""
    props = OBJECT_KINDS[kind]
    return {HEAT: props.heatable, COOL: props.coolable, CLEAN: props.cleanable}.get(task_type, True)
