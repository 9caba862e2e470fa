"""The shipped starting policies: cold-started embedded models that come with the package.

``spear/models/pretrained/<env>/`` holds an HF-format model and tokenizer that
``scripts/build_starting_policy.py`` built and cold-started on ``<env>`` in the ``turn``
rollout layout (spear's default); a policy cold-started in another layout sits beside it in
``<env>-<layout>/`` (the TRL integration trains ``trajectory`` rows). Each folder holds
``manifest.json``: the command that rebuilds it, the settings it was built with, its
held-out evaluation, and the byte size and sha256 of every file. A policy is verified
against its manifest before it is loaded, so a deleted, truncated or edited file is
reported by name with that command instead of failing deep inside ``from_pretrained``.

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
# Used when the manifest itself is gone or unreadable (it normally records its own command).
REBUILD_COMMAND = "python scripts/build_starting_policy.py --env {env}"
DEFAULT_LAYOUT = "turn"  # rollout.layout's default: its policy's folder is the environment's name
# The other layouts a policy is shipped in (spear.rollout.config.LAYOUTS; this floor cannot import it)
OTHER_LAYOUTS = ("trajectory",)
PACKAGE_FOLDER = "spear/models/pretrained"  # pretrained_root() in a checkout, where the builder runs


class StartingPolicyError(ValueError):
    """A shipped starting policy is missing, damaged or not shipped for an environment."""


def pretrained_root() -> Path:
    """The folder holding one sub-folder per environment with a shipped policy."""
    return Path(str(resources.files("spear.models").joinpath("pretrained")))


def policy_folder_name(env_name: str, layout: str = DEFAULT_LAYOUT) -> str:
    """The folder name of ``env_name``'s policy cold-started in rollout ``layout``."""
    return env_name if layout == DEFAULT_LAYOUT else f"{env_name}-{layout}"


def folder_env_and_layout(path: str | Path) -> tuple[str, str]:
    """(environment, layout) of a policy folder, from its name (:func:`policy_folder_name`)."""
    name = Path(path).name
    for layout in OTHER_LAYOUTS:
        if name.endswith(f"-{layout}"):
            return name.removesuffix(f"-{layout}"), layout
    return name, DEFAULT_LAYOUT


def starting_policy_dir(env_name: str, layout: str = DEFAULT_LAYOUT) -> Path | None:
    """The folder of the policy shipped for ``env_name`` in rollout ``layout``, or None when
    none is shipped.

    A folder that exists counts as shipped even if it is damaged: loading it then
    fails with the damage named, instead of silently training from scratch.
    """
    if not isinstance(env_name, str) or not env_name or "/" in env_name or env_name.startswith("."):
        return None
    if layout != DEFAULT_LAYOUT and layout not in OTHER_LAYOUTS:
        return None
    path = pretrained_root() / policy_folder_name(env_name, layout)
    return path if path.is_dir() else None


def rebuild_command(env_name: str, layout: str = DEFAULT_LAYOUT) -> str:
    """The documented command that builds the shipped policy of ``env_name`` in ``layout``, as
    the builder records it (without ``--out``: :func:`into_folder` adds it)."""
    command = REBUILD_COMMAND.format(env=env_name)
    return command if layout == DEFAULT_LAYOUT else f"{command} rollout.layout={layout}"


def into_folder(command: str, env_name: str, layout: str) -> str:
    """``command`` (a build command) writing where the package looks for ``layout``'s policy:
    the builder's default folder is the ``turn`` one, another layout's needs ``--out``."""
    if layout == DEFAULT_LAYOUT:
        return command
    return f"{command} --out {PACKAGE_FOLDER}/{policy_folder_name(env_name, layout)}"


def rebuild_hint(path: str | Path, command: str) -> str:
    """``Rebuild it with: ...`` for the policy in ``path`` built by ``command``."""
    return f"Rebuild it with: {into_folder(command, *folder_env_and_layout(path))}"


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
    env_name, layout = folder_env_and_layout(path)
    target = path / MANIFEST
    how = rebuild_hint(path, rebuild_command(env_name, layout))
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
        manifest["command"] = rebuild_command(manifest.get("env", env_name), layout)
    return manifest


def verify_starting_policy(path: str | Path) -> dict[str, Any]:
    """Check every file the manifest lists: present, same byte size, same sha256.

    Returns the manifest. Raises StartingPolicyError naming the first bad file and the
    command that rebuilds the policy.
    """
    path = Path(path)
    manifest = read_manifest(path)
    how = rebuild_hint(path, manifest["command"])
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
    env_name: str, dtype: str | torch.dtype | None = None, layout: str = DEFAULT_LAYOUT
) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Verify and load the shipped policy of ``env_name`` in rollout ``layout``: (model,
    tokenizer, manifest)."""
    from spear.models.embedded import load_model_and_tokenizer

    path = starting_policy_dir(env_name, layout)
    if path is None:
        shipped = "" if layout == DEFAULT_LAYOUT else f" in the {layout!r} layout"
        raise StartingPolicyError(
            f"no starting policy is shipped for environment '{env_name}'{shipped}; build one with: "
            f"{into_folder(rebuild_command(env_name, layout), env_name, layout)}"
        )
    manifest = verify_starting_policy(path)
    try:
        model, tokenizer = load_model_and_tokenizer(path, dtype=dtype)
    except (OSError, ValueError) as exc:  # verified files that still do not load: rebuilt by a broken build
        raise StartingPolicyError(
            f"the starting policy in {path} does not load ({exc}). {rebuild_hint(path, manifest['command'])}"
        ) from None
    return model, tokenizer, manifest
