"""TextWorld games as spear environments (docs/envs/textworld.md).

* :class:`TextWorldEnv`: plays one split of a game set, a flat folder of games (split by
  file-name hash, :func:`flat_split`) or a single game (registered as ``textworld``);
* :func:`make_games`: generates a train/eval game set with TextWorld's generator;
* :func:`shared_games`: the train/eval pairs with identical content (empty when disjoint).
"""

from spear.envs.textworld.env import TextWorldEnv
from spear.envs.textworld.games import (
    DIFFICULTIES,
    EVAL_SHARE,
    flat_split,
    game_file_signature,
    make_games,
    shared_games,
)

__all__ = [
    "DIFFICULTIES",
    "EVAL_SHARE",
    "TextWorldEnv",
    "flat_split",
    "game_file_signature",
    "make_games",
    "shared_games",
]
