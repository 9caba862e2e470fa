"""Cleaning TextWorld's output and guarding its interpreter against unsafe input.

The Z-machine interpreter behind TextWorld prints a prompt and a status bar after
every reply and a RESTART/QUIT menu after the game ends; the model should see only
the game's answer. It also obeys Inform 7's meta commands (``restart``,
``restore``, ``save``, ``script``, ``undo``, ...), which would desynchronise
TextWorld's state tracking or write files into the working directory, and it halts
on control characters. Non-admissible commands therefore go through
:func:`unsafe_command_reason` before they reach the game.
"""

from __future__ import annotations

import re

_PROMPT_LINE = re.compile(r"\n>[^\n]*$")
_BLANK_RUNS = re.compile(r"\n{3,}")
_GAME_OVER_MENU = "Would you like to RESTART"
_SAFE_COMMAND = re.compile(r"[a-z0-9' -]+")

# Inform 7 "out of world" verbs: they act on the interpreter, not on the story.
META_VERBS = frozenset(
    [
        "again",
        "brief",
        "full",
        "fullscore",
        "g",
        "noscript",
        "normal",
        "notify",
        "nouns",
        "o",
        "oops",
        "pronouns",
        "q",
        "quit",
        "restart",
        "restore",
        "save",
        "score",
        "script",
        "superbrief",
        "transcript",
        "undo",
        "unscript",
        "verbose",
        "verify",
        "version",
    ]
)


def clean_feedback(text: str) -> str:
    """Drop the prompt/status line and the game-over menu; tidy whitespace."""
    text = _PROMPT_LINE.sub("", text or "")
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith(_GAME_OVER_MENU)]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def unsafe_command_reason(command: str) -> str | None:
    """Why ``command`` must not be sent to the interpreter, or None if it is safe.

    Safe commands are one story command in plain lower-case words: letters,
    digits, spaces, hyphens and apostrophes, no Inform meta verb, and no ``then``
    (Inform would run several commands in one turn).
    """
    if not _SAFE_COMMAND.fullmatch(command):
        return "the game only understands plain words (letters, digits, spaces, hyphens, apostrophes)"
    words = command.split()
    if words and words[0] in META_VERBS:
        return f"'{words[0]}' is a game-system command, not an action in the story"
    if "then" in words:
        return "give one action per turn"
    return None
