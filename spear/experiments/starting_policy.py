"""Building a shipped starting policy (``scripts/build_starting_policy.py``).

The policy is what ``spear train --from-scratch`` would start RL from: the embedded
model built for the environment and cold-started by SFT on noisy expert
demonstrations, with the config of preset ``spear`` + the environment's profile +
the given overrides. It is evaluated on held-out episodes at the config's eval
temperature and written, with ``manifest.json`` (:mod:`spear.models.shipped`), into
``spear/models/pretrained/<env>/`` by default: first into a temporary sibling folder,
then swapped in, so an interrupted build leaves the old policy in place.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import spear
from spear.models.embedded import count_parameters
from spear.models.shipped import MANIFEST, MAX_BYTES, file_digest, pretrained_root, verify_starting_policy
from spear.trainer.checkpoint import staged_folder
from spear.trainer.config import ConfigError, load_config
from spear.trainer.evaluate import episode_outcomes, play_held_out, summarize
from spear.trainer.loop import eval_batch_size, eval_settings, make_engine, save_run_settings
from spear.trainer.run import runs_sft, say, setup_model

PRESET = "spear"


def default_out_dir(env_name: str) -> Path:
    return pretrained_root() / env_name


def builder_config(env_name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Preset spear + the environment's profile + ``overrides``, building from scratch."""
    config = load_config(PRESET, [f"env.name={env_name}", *overrides, "model.init=scratch"])
    if config["model"]["path"] is not None:
        raise ConfigError("a starting policy is the embedded model built from scratch; drop model.path")
    if not runs_sft(config):
        raise ConfigError("a starting policy is cold-started; sft.enabled must be auto or true")
    if config["model"]["lora"]["enabled"]:
        raise ConfigError("a starting policy is a full model; drop model.lora.enabled")
    return config


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
        "device": "cpu",
        "python": platform.python_version(),
    }


def evaluate_policy(model: Any, tokenizer: Any, config: dict[str, Any], episodes: int) -> dict[str, Any]:
    """Held-out success and score as a run's eval engine measures them (same seeds and settings),
    with each episode's outcome and those settings: a run from this policy with equal settings
    reuses the outcomes as its evaluation before RL (``spear.trainer.run.recorded_start_outcomes``)."""
    engine = make_engine(
        model, tokenizer, config, "eval", group_size=1, temperature=config["eval"]["temperature"]
    )
    try:
        records = play_held_out(engine, config["env"]["name"], episodes, batch_size=eval_batch_size(episodes))
    finally:
        engine.close()
    outcomes = episode_outcomes(records)
    result = summarize(outcomes)
    return {
        "episodes": result.episodes,
        "temperature": config["eval"]["temperature"],
        "success_rate": result.success_rate,
        "success_ci": list(result.success_ci),
        "score": result.score,
        "summary": result.summary(),
        "settings": eval_settings(config, model),
        "outcomes": outcomes,
    }


def build_starting_policy(
    env_name: str,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    eval_episodes: int = 512,
    command: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build, cold-start, evaluate and write the starting policy of ``env_name``; returns its
    manifest. ``command`` is recorded as the command that regenerates it."""
    if eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {eval_episodes}")
    config = builder_config(env_name, overrides)
    out = Path(out_dir) if out_dir is not None else default_out_dir(env_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    if command is None:
        command = f"python scripts/build_starting_policy.py --env {env_name}"
    with tempfile.TemporaryDirectory(prefix="spear-starting-policy-") as tmp:
        run_dir = Path(tmp)
        torch.manual_seed(config["seed"])
        start = time.perf_counter()
        model, tokenizer = setup_model(config, run_dir, quiet=quiet)
        train_seconds = time.perf_counter() - start
        say(f"evaluating on {eval_episodes} held-out episodes ...", quiet=quiet)
        evaluation = evaluate_policy(model, tokenizer, config, eval_episodes)
        say(f"cold-started policy: {evaluation['summary']}", quiet=quiet)
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
                "machine": machine_info(),
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
