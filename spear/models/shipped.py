"""The shipped starting policies: cold-started embedded models that come with the package.

``spear/models/pretrained/<folder>/`` holds an HF-format model and tokenizer that
``scripts/build_starting_policy.py`` built and cold-started on an environment, plus
``manifest.json``: the command that rebuilds it, the settings it was built with, its
held-out evaluation, the package versions and machine, and the byte size and sha256 of
every file. A policy is verified against its manifest before it is loaded, so a deleted,
truncated or edited file is reported by name with that command instead of failing deep
inside ``from_pretrained``.

An environment may ship several policies, told apart by two names (:func:`policy_folder_name`):

* the **kind** (``model.shipped``): ``expert``, a behaviour clone of the scripted expert,
  or ``novice``, a policy that has learnt the protocol but not the tasks, where RL does the
  learning (docs/DESIGN.md, "Novice starting policies");
* the rollout **layout** it was cold-started in: ``turn`` (spear's default) or
  ``trajectory`` (the TRL integration's rows).

``household`` is the expert clone in the turn layout; ``household-novice`` the novice;
``household-trajectory`` the expert clone's recipe in the trajectory layout.

This module sits below :mod:`spear.trainer`; the builder lives in
:mod:`spear.experiments.starting_policy`.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch

MANIFEST = "manifest.json"
MAX_BYTES = 10 * 1024 * 1024  # every policy ships inside the package: keep the wheel small
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# model.shipped: which of an environment's shipped policies a run starts from
KINDS = ("expert", "novice")
DEFAULT_KIND = "expert"
# the rollout layouts (spear.rollout.config.LAYOUTS; this floor cannot import it)
LAYOUTS = ("turn", "trajectory")
DEFAULT_LAYOUT = "turn"
# Used when the manifest itself is gone or unreadable (it normally records its own command).
REBUILD_COMMAND = "python scripts/build_starting_policy.py --env {env}"


class StartingPolicyError(ValueError):
    """A shipped starting policy is missing, damaged or not shipped for an environment."""


def pretrained_root() -> Path:
    """The folder holding one sub-folder per shipped policy."""
    return Path(str(resources.files("spear.models").joinpath("pretrained")))


def policy_folder_name(env_name: str, kind: str = DEFAULT_KIND, layout: str = DEFAULT_LAYOUT) -> str:
    """``<env>[-<kind>][-<layout>]``: the default kind and layout add nothing."""
    name = env_name if kind == DEFAULT_KIND else f"{env_name}-{kind}"
    return name if layout == DEFAULT_LAYOUT else f"{name}-{layout}"


def folder_key(path: str | Path) -> tuple[str, str, str]:
    """(environment, kind, layout) of a policy folder, from its name (:func:`policy_folder_name`)."""
    name, kind, layout = Path(path).name, DEFAULT_KIND, DEFAULT_LAYOUT
    for other in LAYOUTS:
        if other != DEFAULT_LAYOUT and name.endswith(f"-{other}"):
            name, layout = name.removesuffix(f"-{other}"), other
    for other in KINDS:
        if other != DEFAULT_KIND and name.endswith(f"-{other}"):
            name, kind = name.removesuffix(f"-{other}"), other
    return name, kind, layout


def starting_policy_dir(env_name: str, kind: str = DEFAULT_KIND, layout: str = DEFAULT_LAYOUT) -> Path | None:
    """The folder of the ``kind`` policy shipped for ``env_name`` in rollout ``layout``, or
    None when none is shipped.

    A folder that exists counts as shipped even if it is damaged: loading it then
    fails with the damage named, instead of silently training from scratch.
    """
    if not isinstance(env_name, str) or not env_name or "/" in env_name or env_name.startswith("."):
        return None
    if kind not in KINDS or layout not in LAYOUTS:
        return None
    path = pretrained_root() / policy_folder_name(env_name, kind, layout)
    return path if path.is_dir() else None


def shipped_policy_dir(env_name: str, kind: str = DEFAULT_KIND, layout: str = DEFAULT_LAYOUT) -> Path | None:
    """The ``kind`` policy a run in rollout ``layout`` starts from: the one cold-started in that
    layout when shipped, else the ``turn`` one (a run then warns that its prompts differ)."""
    return starting_policy_dir(env_name, kind, layout) or starting_policy_dir(env_name, kind)


def rebuild_command(env_name: str, kind: str = DEFAULT_KIND, layout: str = DEFAULT_LAYOUT) -> str:
    """The documented command that builds the ``kind`` policy of ``env_name`` in ``layout``
    into the folder the package looks in."""
    command = REBUILD_COMMAND.format(env=env_name)
    if kind != DEFAULT_KIND:
        command += f" --policy {kind}"
    return command if layout == DEFAULT_LAYOUT else f"{command} rollout.layout={layout}"


def file_digest(path: Path) -> tuple[int, str]:
    """(byte size, sha256 hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the policy folder ``path``; StartingPolicyError if it is missing or
    not a manifest (the message holds the documented rebuild command)."""
    path = Path(path)
    target = path / MANIFEST
    how = f"Rebuild it with: {rebuild_command(*folder_key(path))}"
    if not target.is_file():
        raise StartingPolicyError(f"the starting policy in {path} is incomplete: {target} is missing. {how}")
    try:
        manifest = json.loads(target.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StartingPolicyError(f"{target} is not readable JSON ({exc}). {how}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    well_formed = isinstance(files, dict) and all(
        isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    )
    if not well_formed:
        raise StartingPolicyError(f"{target} lacks a valid 'files' table of byte sizes and sha256. {how}")
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise StartingPolicyError(f"{target} does not list {', '.join(missing)}. {how}")
    if not isinstance(manifest.get("command"), str) or not manifest["command"]:
        manifest["command"] = rebuild_command(*folder_key(path))
    return manifest


def verify_starting_policy(path: str | Path) -> dict[str, Any]:
    """Check every file the manifest lists: present, same byte size, same sha256.

    Returns the manifest. Raises StartingPolicyError naming the first bad file and the
    command that rebuilds the policy.
    """
    path = Path(path)
    manifest = read_manifest(path)
    how = f"Rebuild it with: {manifest['command']}"
    for name, expected in manifest["files"].items():
        target = path / name
        if not target.is_file():
            raise StartingPolicyError(
                f"the starting policy in {path} is incomplete: {target} is missing. {how}"
            )
        size, sha = file_digest(target)
        if size != expected["bytes"]:
            raise StartingPolicyError(
                f"the starting policy in {path} is damaged: {target} has {size} bytes, "
                f"its manifest says {expected['bytes']}. {how}"
            )
        if sha != expected["sha256"]:
            raise StartingPolicyError(
                f"the starting policy in {path} is damaged: the sha256 of {target} differs from "
                f"its manifest. {how}"
            )
    return manifest


def load_starting_policy(
    env_name: str,
    dtype: str | torch.dtype | None = None,
    kind: str = DEFAULT_KIND,
    layout: str = DEFAULT_LAYOUT,
) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Verify and load the ``kind`` policy shipped for ``env_name`` in rollout ``layout``:
    (model, tokenizer, manifest)."""
    from spear.models.embedded import load_model_and_tokenizer

    path = starting_policy_dir(env_name, kind, layout)
    if path is None:
        raise StartingPolicyError(
            f"no {describe(kind, layout)} is shipped for environment '{env_name}'; build one with: "
            f"{rebuild_command(env_name, kind, layout)}"
        )
    manifest = verify_starting_policy(path)
    try:
        model, tokenizer = load_model_and_tokenizer(path, dtype=dtype)
    except (OSError, ValueError) as exc:  # verified files that still do not load: rebuilt by a broken build
        raise StartingPolicyError(
            f"the starting policy in {path} does not load ({exc}). Rebuild it with: {manifest['command']}"
        ) from None
    return model, tokenizer, manifest


def describe(kind: str = DEFAULT_KIND, layout: str = DEFAULT_LAYOUT) -> str:
    """``expert starting policy`` / ``novice starting policy in the 'trajectory' layout``."""
    text = f"{kind} starting policy"
    return text if layout == DEFAULT_LAYOUT else f"{text} in the {layout!r} layout"
