"""Training configuration: plain YAML presets, dotted command-line overrides, early validation.

A run's config is ``presets/base.yaml`` (the embedded default on ``household``),
then the chosen environment's profile ``presets/envs/<env>.yaml`` (its CPU-sized
options and rollout/cold-start sizes), then a preset file holding only what that
method changes (``grpo``, ``drbot``, ``spear``, ...), then a user YAML file, then
``key.sub=value`` overrides. Every error (unknown preset,
environment or key, a value of the wrong type, batch sizes that do not divide)
is raised here, before any compute, and names the key.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spear.algo._checks import check_choice
from spear.algo.advantages import ADVANTAGE_ESTIMATORS, GIGPO_MODES, STATS_OVER
from spear.algo.filters import GROUP_FILTER_KINDS, RESPONSE_FLAGS
from spear.algo.losses import AGG_MODES, POLICY_LOSSES
from spear.algo.replay import ReplayConfig
from spear.algo.rewards import SUCCESS_BONUS_FORMS
from spear.algo.schedules import SCHEDULES
from spear.envs.custom import is_import_path
from spear.rollout.generation import DECODERS
from spear.rollout.prompts import PROMPT_STYLES

PRESET_DIR = "presets"
ENV_PROFILE_DIR = "envs"
BASE = "base"
FREE_FORM_SECTIONS = ("env.options",)  # the environment's constructor options: any keys
MODEL_INITS = ("auto", "shipped", "scratch")  # model.init: where a run without model.path starts
# algorithm.invalid_penalty_on: which turns are penalised (spec 3.10, docs/DESIGN.md): responses
# that fail the action format (the official projection), or also well-formed rejected actions
PENALTY_ON = ("format_error", "invalid_action")
# algorithm.tool_reward.count: the n_k of the tool bonus (spec 3.1, docs/DESIGN.md 8.15): every
# turn the environment was active (the agent scripts' episode_lengths) or the tool calls the
# environment reported (the math scripts' assistant turns with a tool call)
TOOL_COUNTS = ("turns", "tool_calls")
# actor.sum_norm_length: the L_max of seq-mean-token-sum-norm (spec 3.6, docs/DESIGN.md)
SUM_NORM_LENGTHS = ("budget", "micro_batch")
# actor.minibatch_order: the row order mini-batches are cut from (docs/DESIGN.md)
MINIBATCH_ORDERS = ("trajectory", "turn")
# sil.weight_at: where lambda_sil(t) enters the replay update (docs/DESIGN.md, "Gradient clipping")
SIL_WEIGHT_AT = ("loss", "clipped_gradient")
WANDB_MODES = ("offline", "online", "disabled")  # logging.wandb.mode
WANDB_MISSING = (
    "config key 'logging.wandb.enabled' is true but the wandb package is not installed: "
    "pip install 'spear-rl[wandb]'"
)


class ConfigError(ValueError):
    """A configuration problem, raised before any compute."""


def available_presets() -> list[str]:
    files = resources.files("spear.trainer").joinpath(PRESET_DIR).iterdir()
    return sorted(
        f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml") and f.name != f"{BASE}.yaml"
    )


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping at the top level")
    return data


def _preset_text(name: str) -> str:
    path = resources.files("spear.trainer").joinpath(PRESET_DIR, f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}'; available: {', '.join(available_presets())}")
    return path.read_text()


def base_config() -> dict[str, Any]:
    """``presets/base.yaml``: every key with its default (fills sections that runs written by
    older versions lack, on resume)."""
    return _read_yaml(_preset_text(BASE), "presets/base.yaml")


def preset_overrides(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """What preset ``name`` changes over base.yaml. A preset may start from another one with
    ``defaults: <preset>`` (the ablations start from ``spear``) and change only what differs."""
    if name in _seen:
        raise ConfigError(f"presets inherit in a cycle: {' -> '.join([*_seen, name])}")
    overrides = _read_yaml(_preset_text(name), f"preset '{name}'")
    parent = overrides.pop("defaults", None)
    if parent is None:
        return overrides
    return merge(preset_overrides(parent, (*_seen, name)), overrides, strict=False)


# Keys whose default differs from what spear did before the key existed: a run written
# without the key continues as it was computed (spear.trainer.run.resume).
BEHAVIOUR_BEFORE_KEY: dict[tuple[str, ...], Any] = {
    ("algorithm", "invalid_penalty_on"): "invalid_action",  # rejected actions were penalised too
    ("algorithm", "tool_reward", "count"): "tool_calls",  # the bonus counted accepted actions
    ("algorithm", "group_filter", "penalised"): True,  # groups were ranked by penalised scores
    ("algorithm", "group_filter", "power_of_two_rows"): False,  # every row of a kept group stayed
    ("actor", "sum_norm_length"): "micro_batch",  # trajectory layout: the micro-batch's longest row
    ("actor", "cov", "block_rows"): None,  # Clip-Cov / KL-Cov counted tokens per whole micro-batch
    ("sil", "cov", "block_rows"): None,
    ("actor", "minibatch_order"): "turn",  # mini-batches cut the rollout's turn-major rows
}
# The same for an environment's options, by environment name. env.options is free-form and
# an option left at the environment's default is not written, so a missing option alone does
# not date a config: the marker, a key every config written since the change holds, does.
ENV_OPTIONS_BEFORE_KEY: dict[tuple[str, str], tuple[Any, str]] = {
    # buying paid 10 x the match score, partial matches included (until 12d7cf8; the marker
    # key came with 8ea38cf, just before)
    ("shop", "reward"): ("score", "algorithm.tool_reward.on_success"),
}


def with_behaviour_it_was_written_with(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a run's config.yaml) with :data:`BEHAVIOUR_BEFORE_KEY` filled in where it
    lacks those keys and, if it predates their marker, its environment's
    :data:`ENV_OPTIONS_BEFORE_KEY`; every other missing key takes its default, which keeps the
    old behaviour."""
    out = copy.deepcopy(saved)
    env = out.get("env")
    if isinstance(env, dict) and isinstance(env.get("options"), dict):
        for (name, key), (value, marker) in ENV_OPTIONS_BEFORE_KEY.items():
            if env.get("name") == name and not _holds(saved, marker):  # written before the marker
                env["options"].setdefault(key, value)
    for (*sections, key), value in BEHAVIOUR_BEFORE_KEY.items():
        node = out
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(key, value)
    return out


def merge(
    base: dict[str, Any], update: dict[str, Any], *, path: str = "", strict: bool = True
) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``; unknown keys are errors when ``strict``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{path}{key}"
        if strict and key not in out:
            raise ConfigError(f"unknown config key '{dotted}'")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            strict_below = strict and dotted not in FREE_FORM_SECTIONS
            out[key] = merge(out[key], value, path=f"{dotted}.", strict=strict_below)
        else:
            out[key] = value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"actor.lr=3e-4"`` -> (["actor", "lr"], 0.0003); values are parsed as YAML scalars/lists."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, _, raw = item.partition("=")
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{item}': cannot parse the value: {exc}") from exc
    if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    return keys, value


def apply_override(config: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set one dotted key. A free-form section (``env.options``) takes new keys one by one
    (``env.options.tasks=[gcd]``); a mapping given for it replaces it whole."""
    node = config
    for depth, key in enumerate(keys[:-1]):
        if not isinstance(node.get(key), dict):
            raise ConfigError(f"unknown config key '{'.'.join(keys[: depth + 1])}'")
        node = node[key]
    parent = ".".join(keys[:-1])
    if keys[-1] not in node and parent not in FREE_FORM_SECTIONS:
        raise ConfigError(f"unknown config key '{'.'.join(keys)}'")
    old = node.get(keys[-1])
    if isinstance(old, dict) and not isinstance(value, dict):
        raise ConfigError(f"config key '{'.'.join(keys)}' is a section; set one of its keys instead")
    node[keys[-1]] = value


def env_profile(env_name: str) -> dict[str, Any]:
    """What ``presets/envs/<env_name>.yaml`` changes over base.yaml ({} for environments without one)."""
    if not isinstance(env_name, str):
        return {}  # validate() names the bad env.name
    path = resources.files("spear.trainer").joinpath(PRESET_DIR, ENV_PROFILE_DIR, f"{env_name}.yaml")
    if not path.is_file():
        return {}
    return _read_yaml(path.read_text(), f"environment profile '{env_name}'")


def load_config(
    preset: str = "spear", overrides: list[str] | None = None, *, config_file: str | Path | None = None
) -> dict[str, Any]:
    """Resolve base + environment profile + preset (+ a user YAML file) + overrides into a
    validated config dict. The environment is known only after the user's layers, so they
    are applied once to find it and again over its profile."""
    base = _read_yaml(_preset_text(BASE), "presets/base.yaml")
    layers = [preset_overrides(preset)]
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        layers.append(_read_yaml(path.read_text(), str(path)))
    parsed = [parse_override(item) for item in overrides or []]

    def compose(start: dict[str, Any]) -> dict[str, Any]:
        config = start
        for layer in layers:
            config = merge(config, layer)
        for keys, value in parsed:
            apply_override(config, keys, value)
        return config

    config = compose(base)
    profile = env_profile(config["env"]["name"])
    if profile:
        config = compose(merge(base, profile))
    config["preset"] = preset
    validate(config)
    return config


# ----------------------------------------------------------------------------- validation
def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node[key]
    return node


def _holds(config: dict[str, Any], dotted: str) -> bool:
    try:
        _get(config, dotted)
    except (KeyError, TypeError):
        return False
    return True


def _require(
    config: dict[str, Any],
    dotted: str,
    kind: type | tuple[type, ...],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_none: bool = False,
) -> Any:
    value = _get(config, dotted)
    if value is None and allow_none:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(
            f"config key '{dotted}' must be {'/'.join(k.__name__ for k in kinds)}, got {value!r}"
        )
    if not isinstance(value, kinds):
        raise ConfigError(
            f"config key '{dotted}' must be {'/'.join(k.__name__ for k in kinds)}, got {value!r}"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"config key '{dotted}' must be finite, got {value}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"config key '{dotted}' must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"config key '{dotted}' must be <= {maximum}, got {value}")
    return value


def _choice(config: dict[str, Any], dotted: str, choices: Any) -> None:
    try:
        check_choice(dotted, _get(config, dotted), choices)
    except ValueError as exc:
        raise ConfigError(f"config key {exc}") from None


def validate(config: dict[str, Any]) -> None:
    """Check types, ranges, names and divisibility; raise ConfigError naming the key."""
    from spear.envs import available as available_envs

    _require(config, "seed", int, minimum=0)
    _require(config, "steps", int, minimum=1)
    env_name = _require(config, "env.name", str)
    if not is_import_path(env_name) and env_name not in available_envs():
        raise ConfigError(
            f"config key 'env.name': unknown environment '{env_name}'; "
            f"registered: {', '.join(available_envs())} (or your own class: package.module:Class)"
        )
    _require(config, "env.options", dict)
    if is_import_path(env_name):
        _check_user_env(config)
    _require(config, "env.workers", int, minimum=0)
    _require(config, "env.step_timeout_s", float, minimum=0.001)
    _require(config, "model.path", str, allow_none=True)
    _choice(config, "model.init", MODEL_INITS)
    from spear.models.shipped import KINDS, describe, rebuild_command, shipped_policy_dir

    _choice(config, "model.shipped", KINDS)
    kind = config["model"]["shipped"]
    if (
        config["model"]["path"] is None
        and config["model"]["init"] == "shipped"
        and shipped_policy_dir(env_name, kind, config["rollout"]["layout"]) is None
    ):
        raise ConfigError(
            f"config key 'model.init' is shipped, but no {describe(kind)} is shipped for "
            f"environment '{env_name}'; build one with: {rebuild_command(env_name, kind)} "
            "(or use model.init=scratch, or another model.shipped)"
        )

    _require(config, "rollout.tasks_per_step", int, minimum=1)
    group = _require(config, "rollout.group_size", int, minimum=1)
    _choice(config, "rollout.layout", ("turn", "trajectory"))
    _choice(config, "rollout.prompt_style", PROMPT_STYLES)
    _choice(config, "rollout.decode", DECODERS)
    _require(config, "rollout.max_new_tokens", int, minimum=1)
    _require(config, "rollout.max_response_tokens", int, minimum=1)
    temperature = _require(config, "rollout.temperature", float, minimum=0.0)
    if temperature == 0:
        raise ConfigError(
            "config key 'rollout.temperature' must be > 0 (the policy trained is softmax(logits / T))"
        )
    top_p = _require(config, "rollout.top_p", float, minimum=1e-6, maximum=1.0)
    if top_p < 1 and not config["actor"]["recompute_old_log_prob"]:
        raise ConfigError(
            "config key 'rollout.top_p' < 1 needs actor.recompute_old_log_prob=true: the sampler's "
            "log-probs include the nucleus cut, the trained policy softmax(logits / T) does not"
        )
    _require(config, "rollout.history_length", int, minimum=0)
    _require(config, "rollout.max_turns", int, minimum=1, allow_none=True)

    _choice(config, "algorithm.estimator", ADVANTAGE_ESTIMATORS)
    _choice(config, "algorithm.stats_over", STATS_OVER)
    _choice(config, "algorithm.gigpo.mode", GIGPO_MODES)
    _require(config, "algorithm.gigpo.gamma", float, minimum=0.0, maximum=1.0)
    _require(config, "algorithm.invalid_penalty", float, minimum=0.0)
    _choice(config, "algorithm.invalid_penalty_on", PENALTY_ON)
    _choice(config, "algorithm.tool_reward.schedule", SCHEDULES)
    _choice(config, "algorithm.tool_reward.count", TOOL_COUNTS)
    _choice(config, "algorithm.tool_reward.on_success", SUCCESS_BONUS_FORMS)
    _require(config, "algorithm.tool_reward.total_steps", int, minimum=1, allow_none=True)
    filters = _require(config, "algorithm.filters", list)
    for name in filters:
        if name not in RESPONSE_FLAGS:
            raise ConfigError(
                f"config key 'algorithm.filters': unknown filter '{name}'; known: {', '.join(RESPONSE_FLAGS)}"
            )
    _require(config, "algorithm.group_filter.ratio", float, minimum=1e-6, maximum=1.0)
    _choice(config, "algorithm.group_filter.kind", GROUP_FILTER_KINDS)
    _require(config, "algorithm.group_filter.penalised", bool)
    _require(config, "algorithm.group_filter.power_of_two_rows", bool)
    _require(config, "algorithm.group_filter.ddof", int, minimum=0, maximum=1)
    if config["algorithm"]["estimator"] == "gigpo" and config["rollout"]["layout"] != "turn":
        raise ConfigError(
            "config key 'algorithm.estimator': gigpo needs rollout.layout=turn (anchor observations)"
        )

    _choice(config, "actor.loss_mode", POLICY_LOSSES)
    _choice(config, "actor.agg_mode", AGG_MODES)
    _choice(config, "actor.sum_norm_length", SUM_NORM_LENGTHS)
    _require(config, "actor.lr", float, minimum=0.0)
    _require(config, "actor.ppo_epochs", int, minimum=1)
    mini = _require(config, "actor.mini_batch_size", int, minimum=1)
    micro = _require(config, "actor.micro_batch_size", int, minimum=1)
    _require(config, "actor.forward_tokens", int, minimum=1, allow_none=True)
    _require(config, "actor.grad_clip", float, minimum=0.0)
    _require(config, "actor.entropy_coeff", float)
    if mini % micro:
        raise ConfigError(
            f"config key 'actor.micro_batch_size' ({micro}) must divide actor.mini_batch_size ({mini})"
        )

    _require(config, "sil.enabled", bool)
    _choice(config, "sil.schedule", SCHEDULES)
    _require(config, "sil.total_steps", int, minimum=1, allow_none=True)
    _require(config, "sil.coef", float, minimum=0.0)
    _choice(config, "sil.weight_at", SIL_WEIGHT_AT)
    for section in ("actor", "sil"):
        _require(config, f"{section}.cov.block_rows", int, minimum=1, allow_none=True)
    _choice(config, "actor.minibatch_order", MINIBATCH_ORDERS)
    _choice(config, "sil.loss_mode", POLICY_LOSSES)
    buffer = {k: v for k, v in config["sil"]["buffer"].items() if v != "auto"}
    try:
        ReplayConfig(**buffer)
    except TypeError as exc:
        raise ConfigError(f"config key 'sil.buffer': {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"config key 'sil.buffer': {exc}") from None

    _require(config, "eval.every", int, minimum=0)
    _require(config, "eval.episodes", int, minimum=0)
    _require(config, "eval.final_episodes", int, minimum=0)
    _require(config, "checkpoint.every", int, minimum=0)
    _require(config, "logging.tensorboard", bool)
    _require(config, "logging.plots", bool)
    _require(config, "logging.samples.every", int, minimum=0)
    _require(config, "logging.samples.episodes", int, minimum=1, maximum=64)
    _require(config, "logging.samples.max_chars", int, minimum=40, maximum=100_000)
    _check_wandb(config["logging"]["wandb"])
    if config["sft"]["enabled"] not in ("auto", True, False):
        raise ConfigError(
            f"config key 'sft.enabled' must be auto, true or false, got {config['sft']['enabled']!r}"
        )
    _require(config, "sft.episodes", int, minimum=0)
    _require(config, "sft.noise", float, minimum=0.0, maximum=1.0)
    _require(config, "sft.stale_noise", float, minimum=0.0, maximum=1.0)
    _require(config, "sft.tool_shy", float, minimum=0.0, maximum=1.0)
    _require(config, "eval.reuse_start_eval", bool)
    if config["sft"]["noise"] + config["sft"]["stale_noise"] > 1.0:
        raise ConfigError("config keys 'sft.noise' + 'sft.stale_noise' must add up to at most 1")
    if config["sft"]["stale_noise"] > 0 and config["rollout"]["layout"] != "turn":
        raise ConfigError("config key 'sft.stale_noise' > 0 needs rollout.layout=turn")
    _require(config, "sft.keep_think", bool)
    _require(config, "sft.prompt_weight", float, minimum=0.0)
    _require(config, "sft.copy_steps", int, minimum=0)
    _require(config, "sft.copy_context", int, minimum=1)
    _require(config, "sft.copy_random_numbers", bool)
    if group < 2 and config["algorithm"]["estimator"] in ("grpo", "gigpo"):
        raise ConfigError("config key 'rollout.group_size' must be >= 2 for group-relative advantages")


def _check_wandb(settings: Any) -> None:
    """Validate ``logging.wandb`` (types, mode); ConfigError names the key."""

    def fail(key: str, wanted: str) -> None:
        value = settings.get(key) if isinstance(settings, dict) else settings
        raise ConfigError(
            f"config key 'logging.wandb{'.' + key if key else ''}' must be {wanted}, got {value!r}"
        )

    if not isinstance(settings, dict):
        fail("", "a mapping")
    if not isinstance(settings.get("enabled"), bool):
        fail("enabled", "true or false")
    if settings.get("mode") not in WANDB_MODES:
        fail("mode", f"one of {', '.join(WANDB_MODES)}")
    if not isinstance(settings.get("project"), str) or not settings["project"]:
        fail("project", "a non-empty string")
    for key in ("entity", "name", "dir"):
        if settings.get(key) is not None and not isinstance(settings[key], str):
            fail(key, "a string or null")
    tags = settings.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        fail("tags", "a list of strings")
    # checked here, not by importing it: wandb is imported only by the run that logs to it
    if settings["enabled"] and importlib.util.find_spec("wandb") is None:
        raise ConfigError(WANDB_MISSING)


def _check_user_env(config: dict[str, Any]) -> None:
    """A ``package.module:Class`` environment imports, follows the protocol and can be created
    with ``env.options``; it has an expert when the run builds or cold-starts the embedded model
    (a user's environment has no shipped policy, so ``model.init: auto`` starts from scratch)."""
    from spear.envs import _resolve
    from spear.envs.custom import EnvImportError, check_env_instance

    name, model, sft = config["env"]["name"], config["model"], config["sft"]
    needs_expert = (model["path"] is None and model["init"] != "shipped") or sft["enabled"] is True
    try:
        check_env_instance(_resolve(name), name, config["env"]["options"], needs_expert=needs_expert)
    except EnvImportError as exc:
        raise ConfigError(f"config key 'env.name': {exc}") from None


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
