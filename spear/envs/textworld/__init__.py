"""TextWorld games as spear environments (docs/envs/textworld.md).

* :class:`TextWorldEnv`: plays one split of a game set (registered as ``textworld``);
* :func:`make_games`: generates a train/eval game set with TextWorld's generator;
* :func:`shared_games`: the train/eval pairs with identical content (empty when disjoint).
"""

from spear.envs.textworld.env import TextWorldEnv
from spear.envs.textworld.games import DIFFICULTIES, game_file_signature, make_games, shared_games

__all__ = ["DIFFICULTIES", "TextWorldEnv", "game_file_signature", "make_games", "shared_games"]
