"""Your own environment by import path: ``spear train --env package.module:Class``.

An environment name holding a colon is an import path. :func:`import_env` imports the
module (the current directory first on ``sys.path``, as ``python -m`` does), takes the
attribute and checks it against the protocol of :mod:`spear.envs.base`; ``spear.envs.make``
registers it under the path on first use, so the trainer, the cold start, the embedded
tokenizer, worker processes and ``spear eval`` all find it by that name
(docs/ENVIRONMENTS.md, "Your environment from the command line").
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from spear.envs.base import SPLITS

ACTION_FORMATS = ("react", "tool_call")
METHODS = ("reset", "step", "close")  # called by the rollout engine on every environment
ATTRIBUTES = ("name", "action_format", "max_turns", "admissible_actions", "tools")
EXPERT = "solver"  # the scripted expert: the embedded tokenizer's corpus and the cold start


class EnvImportError(ValueError):
    """An environment import path that does not import or breaks the protocol."""


def is_import_path(name: Any) -> bool:
    """Whether an environment name is a ``module:Class`` import path (built-ins have no colon)."""
    return isinstance(name, str) and ":" in name


def label(name: str) -> str:
    """A short, file-name-safe label of an environment (the class name of an import path)."""
    return name.rpartition(":")[2] if is_import_path(name) else name


def import_env(path: str) -> type:
    """Import ``package.module:Class`` and check it (EnvImportError saying what is wrong)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise EnvImportError(f"environment '{path}' must look like package.module:Class")
    cwd = os.getcwd()
    if cwd not in sys.path:  # `spear` is a console script: its sys.path lacks the current folder
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EnvImportError(
            f"environment '{path}': cannot import module '{module_name}' ({exc}); run spear from the "
            "folder that holds it or add that folder to PYTHONPATH"
        ) from None
    except Exception as exc:
        raise EnvImportError(
            f"environment '{path}': importing module '{module_name}' raised {type(exc).__name__}: {exc}"
        ) from None
    factory = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise EnvImportError(
                f"environment '{path}': module '{module_name}' has no attribute '{attribute}'"
            )
        factory = getattr(factory, part)
    check_env_class(factory, path)
    return factory


def check_env_class(cls: Any, path: str) -> None:
    """The protocol members a class must have before it is ever instantiated."""
    if not inspect.isclass(cls):
        raise EnvImportError(f"environment '{path}' is a {type(cls).__name__}, not a class")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise EnvImportError(
            f"environment '{path}' does not implement {', '.join(m + '()' for m in abstract)} "
            "(abstract in spear.envs.base.Env)"
        )
    for method in METHODS:
        if not callable(getattr(cls, method, None)):
            raise EnvImportError(f"environment '{path}' breaks the protocol: it has no method {method}()")
    for attribute in ATTRIBUTES:
        if not hasattr(cls, attribute):
            raise EnvImportError(
                f"environment '{path}' breaks the protocol: it has no attribute '{attribute}'"
            )
    if cls.action_format not in ACTION_FORMATS:
        raise EnvImportError(
            f"environment '{path}': action_format must be one of {', '.join(ACTION_FORMATS)}, "
            f"got {cls.action_format!r}"
        )
    if isinstance(cls.max_turns, bool) or not isinstance(cls.max_turns, int) or cls.max_turns < 1:
        raise EnvImportError(
            f"environment '{path}': max_turns must be a positive integer, got {cls.max_turns!r}"
        )


def check_env_instance(cls: type, path: str, options: dict[str, Any], *, needs_expert: bool) -> None:
    """Create the environment once with ``options`` on each split and check what only an
    instance shows (``instruction``); then ``solver()`` when the run builds or cold-starts a model."""
    for split in SPLITS:
        try:
            env = cls(**{**options, "split": split})
        except Exception as exc:
            raise EnvImportError(
                f"environment '{path}': creating it with options {options} and split={split!r} raised "
                f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            if not hasattr(env, "instruction"):
                raise EnvImportError(
                    f"environment '{path}' breaks the protocol: an instance has no attribute 'instruction'"
                )
        finally:
            env.close()
    if needs_expert and not callable(getattr(cls, EXPERT, None)):
        raise EnvImportError(
            f"environment '{path}' has no method {EXPERT}(): the scripted expert the embedded "
            "model's tokenizer and cold start learn from. Implement it, or start from a model "
            "of your own: --model PATH (the cold start is then skipped)"
        )
