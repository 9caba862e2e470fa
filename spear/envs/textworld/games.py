"""Generating and finding TextWorld game sets (docs/envs/textworld.md).

A game set is a directory with ``train/`` and ``eval/`` folders of compiled games
(``.z8`` or ``.ulx``, each with TextWorld's ``.json`` beside it). :func:`list_games` also
plays two simpler sources (``games_dir`` names either):

* a single game file: it serves both splits (train and eval play the same game, so the
  evaluation is not held out);
* a flat folder of games (no ``train/`` or ``eval/`` inside): each game goes to one split by
  a hash of its file name (:func:`flat_split`, a share ``eval_share`` to eval, 25% by
  default), so a game never changes split when others are added; a split left empty is an
  error.

:func:`make_games` builds a game set with TextWorld's own generator (the code behind
``tw-make custom``):

* train games use seeds ``seed, seed + 2, ...`` and eval games ``seed + 1, seed + 3, ...``;
* a candidate whose content signature (map, objects and walkthrough, see
  :func:`game_signature`) equals a game already in the set, in either split, is
  rejected, so the splits are disjoint by content, not merely by seed;
* ``manifest.json`` records the settings and the accepted games, so running again
  with the same settings only adds what is missing (a set grows, never shrinks).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spear.envs.base import SPLITS, check_split

GAME_SUFFIXES = (".z8", ".ulx")
GAMES_DIR_ENV = "SPEAR_TEXTWORLD_GAMES"
DEFAULT_GAMES_DIR = Path("data/textworld")
MANIFEST = "manifest.json"
MAKE_HINT = "run `python scripts/make_textworld_games.py --out DIR` to generate a game set"
EVAL_SHARE = 0.25  # share of a flat folder's games that the file-name hash sends to eval


@dataclass(frozen=True)
class GameSettings:
    """Size of generated games: rooms, objects, and actions the quest needs."""

    world_size: int
    nb_objects: int
    quest_length: int


DIFFICULTIES: dict[str, GameSettings] = {
    "easy": GameSettings(world_size=2, nb_objects=4, quest_length=3),
    "medium": GameSettings(world_size=4, nb_objects=8, quest_length=5),
    "hard": GameSettings(world_size=6, nb_objects=12, quest_length=8),
}


def import_textworld() -> Any:
    """Import TextWorld or explain how to install it."""
    try:
        import textworld
        import textworld.generator
    except ImportError as error:
        raise ImportError(
            "the TextWorld environment needs the `textworld` package: pip install 'spear-rl[textworld]'"
        ) from error
    return textworld


def resolve_games_dir(games_dir: str | os.PathLike[str] | None) -> Path:
    """``games_dir``, else ``$SPEAR_TEXTWORLD_GAMES``, else ``data/textworld``."""
    if games_dir is None:
        games_dir = os.environ.get(GAMES_DIR_ENV) or DEFAULT_GAMES_DIR
    return Path(games_dir)


def _check_metadata(games: list[Path]) -> list[Path]:
    for game in games:
        if not game.with_suffix(".json").is_file():
            raise ValueError(f"game {str(game)!r} has no .json metadata beside it (made by tw-make?)")
    return games


def _games_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in GAME_SUFFIXES and p.is_file())


def check_eval_share(eval_share: float) -> float:
    """``eval_share`` as a float strictly between 0 and 1; ValueError otherwise."""
    if isinstance(eval_share, bool) or not isinstance(eval_share, (int, float)) or not 0 < eval_share < 1:
        raise ValueError(f"eval_share must be a number strictly between 0 and 1, got {eval_share!r}")
    return float(eval_share)


def name_position(name: str) -> float:
    """A file name's fixed place in [0, 1): the first 8 bytes of its UTF-8 sha256, over 2**64."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64


def flat_split(games: Iterable[Path], eval_share: float = EVAL_SHARE) -> dict[str, list[Path]]:
    """Split the games of a flat folder: a game whose :func:`name_position` (of its file name,
    e.g. ``game_000003.z8``) is below ``eval_share`` is an eval game, every other one a train
    game. Depends on nothing but the name, so adding or removing games moves no other game."""
    share = check_eval_share(eval_share)
    out: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for game in sorted(games):
        out["eval" if name_position(game.name) < share else "train"].append(game)
    return out


def game_source(games_dir: Path) -> str:
    """How ``games_dir`` is played: ``file`` (one game, both splits), ``set`` (``train/`` and
    ``eval/`` folders) or ``flat`` (a folder of games split by file-name hash)."""
    if games_dir.is_file():
        return "file"
    if (games_dir / "train").is_dir() or (games_dir / "eval").is_dir():
        return "set"
    return "flat"


def list_games(games_dir: Path, split: str, eval_share: float = EVAL_SHARE) -> list[Path]:
    """The game files of ``split``, sorted by name; ValueError (saying what to do) if there are none.

    ``games_dir`` is a game set (``train/`` and ``eval/`` folders), a single game file (it
    serves both splits) or a flat folder of games (split by :func:`flat_split`).
    """
    check_split(split)
    check_eval_share(eval_share)
    games_dir = Path(games_dir)
    if not games_dir.exists():
        raise ValueError(f"games_dir {str(games_dir)!r} does not exist; {MAKE_HINT}")
    source = game_source(games_dir)
    if source == "file":
        if games_dir.suffix not in GAME_SUFFIXES:
            raise ValueError(
                f"games_dir {str(games_dir)!r} is a file but not a .z8/.ulx game; pass a game file "
                f"(with its .json beside it), a folder of games, or a game set; {MAKE_HINT}"
            )
        return _check_metadata([games_dir])
    if source == "set":
        folder = games_dir / split
        if not folder.is_dir():
            raise ValueError(f"games_dir {str(games_dir)!r} has no '{split}/' folder; {MAKE_HINT}")
        games = _games_in(folder)
        if not games:
            raise ValueError(f"games_dir folder {str(folder)!r} holds no .z8/.ulx games; {MAKE_HINT}")
        return _check_metadata(games)
    games = _games_in(games_dir)
    if not games:
        raise ValueError(
            f"games_dir {str(games_dir)!r} holds neither train/ and eval/ folders nor .z8/.ulx games; "
            f"{MAKE_HINT}"
        )
    splits = flat_split(games, eval_share)
    if not splits[split]:
        counts = ", ".join(f"{len(splits[s])} {s}" for s in SPLITS)
        raise ValueError(
            f"games_dir {str(games_dir)!r} is a flat folder of {len(games)} games; split by the hash of "
            f"their file names (eval_share {eval_share}) they give {counts}, so the {split} split is "
            "empty. Add games, change eval_share, pass a single game file (it serves both splits), "
            "or put the games into train/ and eval/ folders"
        )
    return _check_metadata(splits[split])


def game_signature(game: Any) -> str:
    """Content hash of a ``textworld.Game``: its world facts (map, objects, their
    places and states, with entity names) and its walkthrough.

    Two games with the same signature are the same puzzle even if made from
    different seeds or described with different sentences.
    """
    names = {key: info.name or key for key, info in game.infos.items()}
    facts = sorted(
        f"{fact.name}({','.join(names.get(arg.name, arg.name) for arg in fact.arguments)})"
        for fact in game.world.facts
    )
    payload = json.dumps({"facts": facts, "walkthrough": list(game.walkthrough or [])})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def game_file_signature(path: Path) -> str:
    """:func:`game_signature` of a compiled game, read from its ``.json``."""
    textworld = import_textworld()
    return game_signature(textworld.Game.load(str(Path(path).with_suffix(".json"))))


def shared_games(games_dir: Path, eval_share: float = EVAL_SHARE) -> list[tuple[Path, Path]]:
    """Pairs (train game, eval game) with the same content signature; empty when disjoint
    (a single game file shares itself)."""
    by_signature = {game_file_signature(p): p for p in list_games(games_dir, "train", eval_share)}
    return [
        (by_signature[sig], p)
        for p in list_games(games_dir, "eval", eval_share)
        if (sig := game_file_signature(p)) in by_signature
    ]


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def resolve_settings(
    difficulty: str,
    world_size: int | None = None,
    nb_objects: int | None = None,
    quest_length: int | None = None,
) -> GameSettings:
    """A difficulty preset with optional per-field overrides, validated."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    preset = DIFFICULTIES[difficulty]
    return GameSettings(
        world_size=_check_count("world_size", preset.world_size if world_size is None else world_size, 1),
        nb_objects=_check_count("nb_objects", preset.nb_objects if nb_objects is None else nb_objects, 0),
        quest_length=_check_count(
            "quest_length", preset.quest_length if quest_length is None else quest_length, 1
        ),
    )


class _Manifest:
    """``manifest.json``: the settings and, per split, the accepted games."""

    def __init__(self, out_dir: Path, settings: dict[str, Any]) -> None:
        self.path = out_dir / MANIFEST
        self.settings = settings
        self.games: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
        if self.path.is_file():
            stored = json.loads(self.path.read_text())
            if stored.get("settings") != settings:
                raise ValueError(
                    f"out_dir {str(out_dir)!r} holds games made with other settings "
                    f"({stored.get('settings')}); use another out_dir"
                )
            self.games.update(stored.get("games", {}))

    def entry(self, split: str, seed: int) -> dict[str, Any] | None:
        return next((e for e in self.games[split] if e["seed"] == seed), None)

    def signatures(self) -> set[str]:
        return {e["signature"] for entries in self.games.values() for e in entries}

    def add(self, split: str, entry: dict[str, Any]) -> None:
        self.games[split].append(entry)
        # Written after every game so that an interrupted run keeps its progress.
        self.path.write_text(json.dumps({"settings": self.settings, "games": self.games}, indent=1))


def _generate(textworld: Any, settings: GameSettings, seed: int) -> Any | None:
    """A game for ``seed``, or None when TextWorld finds no quest of that length."""
    from textworld.generator import QuestGenerationError

    options = textworld.GameOptions()
    options.seeds = seed
    options.nb_rooms = settings.world_size
    options.nb_objects = settings.nb_objects
    options.quest_length = settings.quest_length
    try:
        return textworld.generator.make_game(options)
    except QuestGenerationError:
        return None


def _compile(textworld: Any, game: Any, path: Path) -> None:
    options = textworld.GameOptions()
    options.path = str(path)
    options.force_recompile = True  # overwrite leftovers of an interrupted run
    textworld.generator.compile_game(game, options)


def _candidate_seeds(seed: int, split: str, max_candidates: int) -> Iterable[int]:
    parity = SPLITS.index(split)
    return (seed + 2 * k + parity for k in range(max_candidates))


def make_games(
    out_dir: str | os.PathLike[str],
    n_train: int,
    n_eval: int,
    *,
    difficulty: str = "easy",
    world_size: int | None = None,
    nb_objects: int | None = None,
    quest_length: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, list[Path]]:
    """Generate (or complete) a train/eval game set in ``out_dir``.

    Returns the game files per split, in the order they were accepted. Raises
    ValueError on bad arguments and RuntimeError when the settings cannot yield
    enough distinct games (e.g. one room, one object).
    """
    _check_count("n_train", n_train, 0)
    _check_count("n_eval", n_eval, 0)
    _check_count("seed", seed, 0)
    settings = resolve_settings(difficulty, world_size, nb_objects, quest_length)
    textworld = import_textworld()
    out = Path(out_dir)
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(out, {**asdict(settings), "seed": seed})
    wanted = {"train": n_train, "eval": n_eval}
    bar = _progress_bar(n_train + n_eval, progress)
    result: dict[str, list[Path]] = {}
    try:
        for split in SPLITS:
            result[split] = _fill_split(textworld, out, split, wanted[split], settings, seed, manifest, bar)
    finally:
        bar.close()
    return result


def _fill_split(
    textworld: Any,
    out: Path,
    split: str,
    count: int,
    settings: GameSettings,
    seed: int,
    manifest: _Manifest,
    bar: Any,
) -> list[Path]:
    files: list[Path] = []
    rejected = 0
    max_candidates = 10 * count + 20
    for candidate in _candidate_seeds(seed, split, max_candidates):
        if len(files) == count:
            return files
        path = out / split / f"game_{candidate:06d}.z8"
        known = manifest.entry(split, candidate)
        if known is not None and path.is_file() and path.with_suffix(".json").is_file():
            files.append(path)
            bar.update(1)
            continue
        game = _generate(textworld, settings, candidate)
        signature = None if game is None else game_signature(game)
        if known is None and (signature is None or signature in manifest.signatures()):
            rejected += 1
            bar.set_postfix(rejected=rejected)
            continue
        _compile(textworld, game, path)
        if known is None:
            manifest.add(split, {"file": f"{split}/{path.name}", "seed": candidate, "signature": signature})
        files.append(path)
        bar.update(1)
    if len(files) < count:
        raise RuntimeError(
            f"only {len(files)} distinct {split} games out of {max_candidates} seeds; "
            "raise world_size, nb_objects or quest_length"
        )
    return files


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="TextWorld games", unit="game", disable=not enabled)
