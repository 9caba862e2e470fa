"""An ALFWorld-like household text world that runs offline (spec 4.1; docs/envs/household.md).

Modules: :mod:`.catalog` (rooms, receptacle and object kinds), :mod:`.world`
(the immutable task data model), :mod:`.generator` (seeded task generation and
difficulty knobs), :mod:`.state` (commands and their effects), :mod:`.solver`
(the scripted expert) and :mod:`.env` (:class:`HouseholdEnv`).
"""

from spear.envs.household.catalog import TASK_TYPES
from spear.envs.household.env import HouseholdEnv
from spear.envs.household.generator import GeneratorConfig
from spear.envs.household.world import Goal, Item, Scenario

__all__ = ["TASK_TYPES", "GeneratorConfig", "Goal", "HouseholdEnv", "Item", "Scenario"]
