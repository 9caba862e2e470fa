"""Building a shipped starting policy (``scripts/build_starting_policy.py``).

The policy is what ``spear train --from-scratch`` would start RL from: the embedded
model built for the environment and cold-started by SFT on noisy expert
demonstrations, with the config of preset ``spear`` + the environment's profile + the
policy kind's recipe (:data:`RECIPES`) + the given overrides. It is evaluated on held-out
episodes at the config's eval temperature and greedily (a policy must not look weak only
because it samples), and written, with ``manifest.json`` (:mod:`spear.models.shipped`),
into ``spear/models/pretrained/<env>[-<kind>][-<layout>]/`` by default: first into a
temporary sibling folder, then swapped in, so an interrupted build leaves the old policy
in place. The manifest records every package version the weights depend on and the
commit: a rebuild on another version may give other bytes (docs/DESIGN.md).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import spear
from spear.models.embedded import count_parameters
from spear.models.shipped import (
    DEFAULT_KIND,
    KINDS,
    MANIFEST,
    MAX_BYTES,
    file_digest,
    policy_folder_name,
    pretrained_root,
    verify_starting_policy,
)
from spear.trainer.checkpoint import staged_folder
from spear.trainer.config import ConfigError, load_config
from spear.trainer.evaluate import episode_outcomes, play_held_out, summarize
from spear.trainer.loop import eval_batch_size, eval_settings, make_engine, save_run_settings
from spear.trainer.run import runs_sft, say, setup_model

PRESET = "spear"
# What makes each kind of policy, per environment: overrides applied after the environment's
# profile and before the command line's. The expert clone is the profile itself; a novice
# learns the protocol from few demonstrations (docs/DESIGN.md, "Novice starting policies").
RECIPES: dict[str, dict[str, tuple[str, ...]]] = {
    "expert": {},
    "novice": {
        "household": ("sft.episodes=150", "sft.epochs=6"),
        "sokoban": ("sft.episodes=150", "sft.epochs=6"),  # household's recipe (docs/envs/sokoban.md)
        # 65% of the demonstrations answer in their head: the novice calls the interpreter in
        # 8% of held-out episodes at T = 0.4 and wins all of those (docs/DESIGN.md)
        "math": ("sft.tool_shy=0.65",),
        # half of the demonstrations are the hasty shopper's (open the top result, buy it at
        # once: 0% success); the rest the expert's, whose clone wins 50%. At 0.6 the novice won
        # 3.9% at T = 0.4 and 0% greedy, below the band (docs/envs/shop.md)
        "shop": ("sft.tool_shy=0.5",),
    },
}
# the packages whose versions the built weights depend on (the manifest records them)
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "numpy")


def recipe(env_name: str, kind: str = DEFAULT_KIND) -> tuple[str, ...]:
    """The overrides that make a ``kind`` policy of ``env_name``; ConfigError when there is none."""
    if kind not in KINDS:
        raise ConfigError(f"--policy must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == DEFAULT_KIND:
        return RECIPES[kind].get(env_name, ())
    if env_name not in RECIPES[kind]:
        known = ", ".join(sorted(RECIPES[kind])) or "none"
        raise ConfigError(f"no {kind} recipe for environment '{env_name}' (environments with one: {known})")
    return RECIPES[kind][env_name]


def default_out_dir(env_name: str, kind: str = DEFAULT_KIND, layout: str = "turn") -> Path:
    return pretrained_root() / policy_folder_name(env_name, kind, layout)


def builder_config(env_name: str, overrides: Sequence[str] = (), kind: str = DEFAULT_KIND) -> dict[str, Any]:
    """Preset spear + the environment's profile + ``kind``'s recipe + ``overrides``, building
    from scratch."""
    config = load_config(
        PRESET, [f"env.name={env_name}", *recipe(env_name, kind), *overrides, "model.init=scratch"]
    )
    if config["model"]["path"] is not None:
        raise ConfigError("a starting policy is the embedded model built from scratch; drop model.path")
    if not runs_sft(config):
        raise ConfigError("a starting policy is cold-started; sft.enabled must be auto or true")
    if config["model"]["lora"]["enabled"]:
        raise ConfigError("a starting policy is a full model; drop model.lora.enabled")
    return config


def package_versions() -> dict[str, str]:
    """The installed version of each package in :data:`PACKAGES` and of Python."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_commit() -> str | None:
    """The git commit of the checkout the builder runs from (``+dirty`` with local changes to
    ``spear/``), or None outside a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "spear"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # a build rewrites spear/models/pretrained: only source changes count as dirty
    changed = [line for line in dirty.splitlines() if "spear/models/pretrained/" not in line]
    return head + ("+dirty" if changed else "")


def machine_info() -> dict[str, Any]:
    """What the build's timing depends on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # the kernels torch dispatches to (AVX2, AVX512, ...): float results, and so the
        # weights' bytes, follow them more than the CPU's name ("AMD EPYC" covers both)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": "cpu",
        "python": platform.python_version(),
    }


def evaluate_policy(
    model: Any, tokenizer: Any, config: dict[str, Any], episodes: int, temperature: float | None = None
) -> dict[str, Any]:
    """Held-out success and score as a run's eval engine measures them (same seeds and settings),
    with each episode's outcome and those settings: a run from this policy with equal settings
    reuses the outcomes as its evaluation before RL (``spear.trainer.run.recorded_start_outcomes``).
    ``temperature`` defaults to the config's eval temperature; 0 is greedy."""
    if temperature is None:
        temperature = config["eval"]["temperature"]
    engine = make_engine(model, tokenizer, config, "eval", group_size=1, temperature=temperature)
    try:
        records = play_held_out(engine, config["env"]["name"], episodes, batch_size=eval_batch_size(episodes))
    finally:
        engine.close()
    outcomes = episode_outcomes(records)
    result = summarize(outcomes)
    turns = max(1, sum(r.turns for r in records))
    return {
        "episodes": result.episodes,
        "temperature": temperature,
        "success_rate": result.success_rate,
        "success_ci": list(result.success_ci),
        "score": result.score,
        # a novice must know the protocol: responses that parse, actions the environment takes
        "format_error_rate": sum(r.format_errors for r in records) / turns,
        "invalid_action_rate": sum(r.invalid_actions for r in records) / turns,
        # a tool-shy novice calls the tools in few episodes (math: the code interpreter)
        "tool_use_rate": sum(r.tool_calls > 0 for r in records) / max(1, len(records)),
        "summary": result.summary(),
        "settings": {**eval_settings(config, model), "temperature": temperature},
        "outcomes": outcomes,
    }


def build_starting_policy(
    env_name: str,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    kind: str = DEFAULT_KIND,
    eval_episodes: int = 512,
    command: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build, cold-start, evaluate and write the ``kind`` starting policy of ``env_name``;
    returns its manifest. ``command`` is recorded as the command that regenerates it."""
    if eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {eval_episodes}")
    config = builder_config(env_name, overrides, kind)
    layout = config["rollout"]["layout"]
    out = Path(out_dir) if out_dir is not None else default_out_dir(env_name, kind, layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    if command is None:
        command = f"python scripts/build_starting_policy.py --env {env_name}"
        command += "" if kind == DEFAULT_KIND else f" --policy {kind}"
    with tempfile.TemporaryDirectory(prefix="spear-starting-policy-") as tmp:
        run_dir = Path(tmp)
        torch.manual_seed(config["seed"])
        start = time.perf_counter()
        model, tokenizer = setup_model(config, run_dir, quiet=quiet)
        train_seconds = time.perf_counter() - start
        say(f"evaluating on {eval_episodes} held-out episodes ...", quiet=quiet)
        evaluation = evaluate_policy(model, tokenizer, config, eval_episodes)
        say(f"cold-started policy: {evaluation['summary']}", quiet=quiet)
        greedy = evaluate_policy(model, tokenizer, config, eval_episodes, temperature=0.0)
        say(f"greedy: {greedy['summary']}", quiet=quiet)
        with staged_folder(out) as staged:
            model.save_pretrained(staged, safe_serialization=True)
            # the chat template inside tokenizer_config.json, as create_embedded saves it (older transformers)
            tokenizer.save_pretrained(staged, save_jinja_files=False)
            save_run_settings(staged, config)  # spear eval's defaults: the env and rollout settings
            staged.chmod(0o755)  # readable to others once installed, whatever the umask
            files = {}
            for item in sorted(staged.iterdir()):
                item.chmod(0o644)
                size, sha = file_digest(item)
                files[item.name] = {"bytes": size, "sha256": sha}
            total = sum(f["bytes"] for f in files.values())
            if total > MAX_BYTES:
                raise ConfigError(
                    f"the starting policy would take {total / 2**20:.1f} MB, over the "
                    f"{MAX_BYTES / 2**20:.0f} MB a shipped policy may take; use smaller model.embedded sizes"
                )
            manifest = {
                "format": 1,
                "env": env_name,
                "kind": kind,
                "command": command,
                "config": {
                    "preset": PRESET,
                    "seed": config["seed"],
                    "env": {"name": env_name, "options": config["env"]["options"]},
                    "model": {"embedded": config["model"]["embedded"]},
                    "sft": config["sft"],
                    "rollout": config["rollout"],
                },
                "files": files,
                "total_bytes": total,
                "parameters": count_parameters(model),
                "train_seconds": round(train_seconds, 1),
                "eval": {k: v for k, v in evaluation.items() if k != "summary"},
                # the same episodes decoded greedily: a policy must not look weak only because it samples
                "eval_greedy": {k: v for k, v in greedy.items() if k != "summary"},
                "machine": machine_info(),
                "versions": package_versions(),
                "commit": source_commit(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "spear_version": spear.__version__,
            }
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            verify_starting_policy(staged)
    say(
        f"wrote {out} ({total / 2**20:.2f} MB, {manifest['parameters'] / 1e6:.2f}M parameters, "
        f"built in {train_seconds:.0f} s)",
        quiet=quiet,
    )
    return manifest
