"""Recipes that wire the components: model setup, cold start, RL, evaluation.

``train`` is what ``spear train`` runs: resolve the config, create the run
directory, get a model (the shipped starting policy, the embedded default built and
cold-started by SFT, or any HF model by path), train it with
:class:`~spear.trainer.loop.Trainer`, and evaluate before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from spear.envs.custom import import_env, is_import_path
from spear.envs.custom import label as env_label
from spear.models.embedded import count_parameters, load_model_and_tokenizer
from spear.models.local import check_model_dir
from spear.models.shipped import (
    DEFAULT_KIND,
    MANIFEST,
    StartingPolicyError,
    describe,
    folder_key,
    load_starting_policy,
    shipped_policy_dir,
    verify_starting_policy,
)
from spear.models.tokenizer import number_token_ids
from spear.rollout.config import RolloutConfig
from spear.rollout.engine import RolloutEngine
from spear.trainer.checkpoint import atomic_write_text, checkpoint_step, latest_checkpoint, saved_threads
from spear.trainer.config import (
    ConfigError,
    base_config,
    dump,
    load_config,
    merge,
    validate,
    with_behaviour_it_was_written_with,
)
from spear.trainer.copy_warmup import copy_warmup
from spear.trainer.embedded import build_embedded
from spear.trainer.evaluate import (
    EvalResult,
    episode_outcomes,
    load_outcomes,
    play_held_out,
    run_paired_gain,
    summarize,
)
from spear.trainer.failures import FailureLog
from spear.trainer.loop import (
    EVAL_BATCH,
    FINAL_MODEL,
    PROMPT_KEYS,
    RUN_SETTINGS,
    Trainer,
    eval_batch_size,
    eval_settings,
    rollout_config,
    save_run_settings,
)
from spear.trainer.sft import collect_demonstrations, demonstration_batch, supervised_finetune

START_RECORD = "start_policy.json"  # in the run directory: which policy the run started from


def default_run_dir(config: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config['preset']}-{env_label(config['env']['name'])}-{stamp}"


def say(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        print(message, flush=True)


def _dtype(config: dict[str, Any]) -> torch.dtype | str:
    dtype = config["model"]["dtype"]
    if dtype == "auto":
        return torch.float32  # fp32 master weights; autocast gives bf16 compute on GPU
    return dtype


def start_kind(config: dict[str, Any]) -> str:
    """Where ``setup_model`` gets the policy: ``path`` (model.path), ``shipped`` (the package's
    starting policy for env.name) or ``scratch`` (build the embedded model). ``model.init:
    auto`` is shipped when the package ships a policy for the environment."""
    model_cfg = config["model"]
    if model_cfg["path"] is not None:
        return "path"
    init = model_cfg.get("init", "auto")  # configs of runs made before model.init existed
    if init == "auto":
        return "shipped" if shipped_dir(config) is not None else "scratch"
    return init


def check_start_model(config: dict[str, Any]) -> None:
    """A given ``model.path`` (``--model``, ``--config``, an override) must be a local folder
    holding a model: ModelPathError otherwise, before a run directory is created or anything
    is computed. The loader checks again (spear.models.local.check_model_dir)."""
    if start_kind(config) == "path":
        check_model_dir(config["model"]["path"])


def setup_model(config: dict[str, Any], run_dir: Path, *, quiet: bool = False) -> tuple[Any, Any]:
    """The policy before RL: a HF model by path, the shipped starting policy, or the embedded
    default built from scratch; cold-started by SFT when ``runs_sft``. Records which in
    ``run_dir/start_policy.json``."""
    model_cfg = config["model"]
    kind = start_kind(config)
    manifest = None
    if kind == "path":
        model, tokenizer = load_model_and_tokenizer(model_cfg["path"], dtype=_dtype(config))
        say(f"loaded {model_cfg['path']} ({count_parameters(model) / 1e6:.1f}M parameters)", quiet=quiet)
    elif kind == "shipped":
        env_name, path = config["env"]["name"], _shipped_dir(config)
        _, kind_of_policy, layout = folder_key(path)
        model, tokenizer, manifest = load_starting_policy(env_name, _dtype(config), kind_of_policy, layout)
        success = manifest.get("eval", {}).get("success_rate")
        measured = f", {100 * success:.1f}% held-out success" if isinstance(success, (int, float)) else ""
        other = "novice" if model_cfg.get("shipped", DEFAULT_KIND) == "expert" else "expert"
        say(
            f"starting from the shipped {env_name} {describe(kind_of_policy, layout)} "
            f"({count_parameters(model) / 1e6:.2f}M parameters, cold-started{measured}): {path}; "
            f"model.shipped={other} starts from the other one where shipped, --from-scratch builds "
            "and cold-starts a new one",
            quiet=quiet,
        )
        for difference in prompt_differences(manifest, config):
            print(f"warning: {difference}", file=sys.stderr)
    else:
        model, tokenizer = build_embedded(
            run_dir / "initial_model",
            config["env"]["name"],
            config["env"]["options"],
            model_cfg["embedded"],
            seed=config["seed"],
            history_length=config["rollout"]["history_length"],
            prompt_style=config["rollout"]["prompt_style"],
        )
        say(
            f"built the embedded Qwen2 model ({count_parameters(model) / 1e6:.2f}M parameters, "
            f"vocabulary {len(tokenizer)}) in {run_dir / 'initial_model'}",
            quiet=quiet,
        )
    record_start(config, run_dir, manifest)
    if runs_sft(config):
        cold_start(model, tokenizer, config, run_dir, quiet=quiet)
    return _ready_for_rl(model, config), tokenizer


def prompt_differences(manifest: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The rollout settings that shape a prompt and differ between the run and the policy's
    cold start (``manifest["config"]["rollout"]``): RL then starts on prompts the policy
    never saw (allowed, but worth a warning)."""
    built = manifest.get("config", {}).get("rollout", {})
    defaults = {"prompt_style": "full", "layout": "turn"}  # manifests made before these keys existed
    return [
        f"rollout.{key} is {config['rollout'][key]!r} but the shipped policy was cold-started with "
        f"{built.get(key, defaults.get(key))!r}: it will see prompts it was not trained on"
        for key in PROMPT_KEYS
        if key in built or key in defaults
        if config["rollout"][key] != built.get(key, defaults.get(key))
    ]


def record_start(config: dict[str, Any], run_dir: Path, manifest: dict[str, Any] | None = None) -> None:
    """Write ``run_dir/start_policy.json``: the start kind, the folder it came from, whether
    this run cold-starts it, and a shipped policy's manifest (files' sha256, build command, eval)."""
    kind = start_kind(config)
    if kind == "path":
        path = config["model"]["path"]  # as given (a local folder: spear downloads nothing)
        if (
            manifest is None and (Path(path) / MANIFEST).is_file()
        ):  # spear compare's runs from a shipped policy
            try:
                manifest = json.loads((Path(path) / MANIFEST).read_text())
            except (OSError, ValueError):
                manifest = None  # some other file of that name: nothing to record
    elif kind == "shipped":
        path = str(_shipped_dir(config))
    else:
        path = str((Path(run_dir) / "initial_model").resolve())
    record = {
        "init": kind,
        "path": path,
        "cold_start_in_run": runs_sft(config),
        "manifest": manifest,
    }
    atomic_write_text(Path(run_dir) / START_RECORD, json.dumps(record, indent=2) + "\n")


def recorded_start_outcomes(config: dict[str, Any], run_dir: Path, model: Any) -> dict[str, list] | None:
    """The evaluation before RL per episode, when the policy's build already measured it; else None.

    A run that starts without SFT from a policy whose manifest holds per-episode outcomes
    measured with this run's evaluation settings (``eval_settings``: environment, prompts,
    temperature, sampler seed, batches, device and dtype) would play the same episodes with
    the same sampler seeds: it reuses the first ``eval.final_episodes`` outcomes (whole
    batches of ``EVAL_BATCH``) instead of spending a minute to measure them again.
    ``eval.reuse_start_eval: false`` always measures.
    """
    if not config["eval"]["reuse_start_eval"] or runs_sft(config):
        return None
    record = json.loads((Path(run_dir) / START_RECORD).read_text())
    manifest = record.get("manifest") or {}
    evaluation = manifest.get("eval", {})
    outcomes = evaluation.get("outcomes")
    if not outcomes or evaluation.get("settings") != eval_settings(config, model):
        return None
    if record["init"] == "path":  # spear compare's runs name the shipped folder by path
        try:
            verify_starting_policy(record["path"])
        except StartingPolicyError:
            return None
    episodes, available = config["eval"]["final_episodes"], len(outcomes["won"])
    if episodes > available or (episodes != available and episodes % EVAL_BATCH):
        return None
    return {name: column[:episodes] for name, column in outcomes.items()}


def runs_sft(config: dict[str, Any]) -> bool:
    """Whether ``setup_model`` cold-starts: ``sft.enabled`` true (which continues SFT on a given
    or shipped policy too), or auto for an embedded model built from scratch."""
    enabled = config["sft"]["enabled"]
    return enabled is True or (enabled == "auto" and start_kind(config) == "scratch")


def _ready_for_rl(model: Any, config: dict[str, Any]) -> Any:
    if config["model"]["gradient_checkpointing"]:
        # transformers 5 renamed it activation checkpointing; the old name warns and goes in v6.
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        enable()
    if config["model"]["lora"]["enabled"]:
        model = apply_lora(model, config["model"]["lora"])
    return model


def prepared_model_path(config: dict[str, Any], run_dir: Path) -> Path:
    """Where the model ``setup_model(config, run_dir)`` starts RL from is saved: the cold-started
    ``sft_model``, the untrained embedded ``initial_model``, the shipped policy's folder, or
    ``model.path`` itself."""
    if runs_sft(config):
        return Path(run_dir) / "sft_model"
    kind = start_kind(config)
    if kind == "scratch":
        return Path(run_dir) / "initial_model"
    if kind == "shipped":
        return _shipped_dir(config)
    return Path(config["model"]["path"])


def shipped_dir(config: dict[str, Any]) -> Path | None:
    """The shipped policy ``config`` names (``model.shipped``, in its rollout layout where one
    is shipped), or None when the environment ships none of that kind."""
    kind = config["model"].get("shipped", DEFAULT_KIND)  # configs of runs made before model.shipped
    return shipped_policy_dir(config["env"]["name"], kind, config["rollout"]["layout"])


def _shipped_dir(config: dict[str, Any]) -> Path:
    path = shipped_dir(config)
    if path is None:  # validate() refuses model.init=shipped without one; auto never picks it
        kind = config["model"].get("shipped", DEFAULT_KIND)
        raise ConfigError(f"no {describe(kind)} is shipped for environment '{config['env']['name']}'")
    return path


def load_replica(config: dict[str, Any], run_dir: Path) -> tuple[Any, Any]:
    """The policy ``setup_model`` produced in ``run_dir``, loaded by the other processes of a
    data-parallel run (which wait while the main process builds and cold-starts it)."""
    model, tokenizer = load_model_and_tokenizer(prepared_model_path(config, run_dir), dtype=_dtype(config))
    return _ready_for_rl(model, config), tokenizer


def make_accelerator(config: dict[str, Any]) -> Any:
    """An ``accelerate.Accelerator`` for the run: bf16 autocast on GPU when ``model.dtype`` is
    auto; data parallel when started with ``accelerate launch`` (spear.trainer.parallel)."""
    from accelerate import Accelerator

    gpu = torch.cuda.is_available()
    mixed = "bf16" if config["model"]["dtype"] == "auto" and gpu else "no"
    # cpu=True lets accelerate recognise a multi-process CPU launch (gloo) from torchrun's variables
    return Accelerator(mixed_precision=mixed, cpu=not gpu)


def apply_lora(model: Any, lora: dict[str, Any]) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError("config key 'model.lora.enabled' needs peft: pip install 'spear-rl[lora]'") from exc
    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


@contextmanager
def _progress_bar(desc: str, quiet: bool) -> Iterator[Callable[[int, int, float], None]]:
    """A tqdm bar of optimizer steps with the last loss; yields its ``progress(done, total, loss)``."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit="step", disable=quiet, dynamic_ncols=True)

    def progress(done: int, total: int, loss: float) -> None:
        bar.total = total
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    try:
        yield progress
    finally:
        bar.close()


def cold_start(
    model: Any, tokenizer: Any, config: dict[str, Any], run_dir: Path, *, quiet: bool = False
) -> dict:
    """SFT on noisy expert demonstrations (spear sft); saves ``run_dir/sft_model``."""
    sft = config["sft"]
    engine = RolloutEngine(
        model,
        tokenizer,
        rollout_config(config, group_size=1, temperature=1.0),  # the scripted expert plays: no sampling
        env_options={**config["env"]["options"], "split": "train"},
    )
    start = time.perf_counter()
    demos = collect_demonstrations(
        engine,
        config["env"]["name"],
        episodes=sft["episodes"],
        noise=sft["noise"],
        stale_noise=sft["stale_noise"],
        tool_shy=sft["tool_shy"],
        seed=config["seed"],
        tasks_per_batch=64,
        keep_think=sft["keep_think"],
    )
    stats = demos.stats()
    say(
        f"cold start: {len(demos)} demonstration rows from {sft['episodes']} noisy-expert episodes "
        f"(expert+noise success {100 * stats['success_rate']:.0f}%)",
        quiet=quiet,
    )
    data = demonstration_batch(demos)
    if sft["copy_steps"] > 0:
        with _progress_bar("copy warm-up", quiet) as progress:
            copy_losses = copy_warmup(
                model,
                data,
                steps=sft["copy_steps"],
                lr=sft["lr"],
                context=sft["copy_context"],
                seed=config["seed"],
                number_ids=torch.tensor(number_token_ids(tokenizer)) if sft["copy_random_numbers"] else None,
                progress=progress,
            )
        say(f"copy warm-up: {len(copy_losses)} steps, final loss {copy_losses[-1]:.3f}", quiet=quiet)
    with _progress_bar("SFT", quiet) as progress:
        losses = supervised_finetune(
            model,
            data,
            epochs=sft["epochs"],
            lr=sft["lr"],
            batch_size=sft["batch_size"],
            seed=config["seed"],
            prompt_weight=sft["prompt_weight"],
            progress=progress,
        )
    engine.close()
    out = run_dir / "sft_model"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    save_run_settings(out, config)  # spear eval and later runs play it with these settings
    summary = {
        "rows": len(demos),
        "final_loss": losses[-1] if losses else None,
        "seconds": time.perf_counter() - start,
    }
    say(
        f"cold start done in {summary['seconds']:.0f} s, final loss {summary['final_loss']:.3f}; saved {out}",
        quiet=quiet,
    )
    return summary


def prepare_run_dir(config: dict[str, Any], run_dir: str | Path | None) -> Path:
    path = Path(run_dir or config.get("run_dir") or default_run_dir(config))
    if latest_checkpoint(path) is not None:
        raise ConfigError(
            f"run directory {path} already holds a run; use --resume {path} or another --run-dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    config["run_dir"] = str(path)
    atomic_write_text(path / "config.yaml", dump(config))
    return path


def train(
    config: dict[str, Any], *, run_dir: str | Path | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Cold start (if any) + RL + final evaluation; returns the summary ``Trainer.fit`` gives.

    Under ``accelerate launch`` the main process prepares the run directory and the model;
    the others wait, load the same model and train their share (spear.trainer.parallel).
    """
    from accelerate.utils import broadcast_object_list

    check_start_model(config)
    accelerator = make_accelerator(config)
    main = accelerator.is_main_process
    torch.manual_seed(config["seed"])
    if main and start_kind(config) == "shipped":
        # a damaged shipped policy is reported before a run directory is created for nothing
        verify_starting_policy(_shipped_dir(config))
    path = new_dir = None
    if main:
        path = Path(run_dir or config.get("run_dir") or default_run_dir(config))
        new_dir = not path.exists()
        path = prepare_run_dir(config, path)
    if accelerator.num_processes > 1:
        path = Path(broadcast_object_list([str(path)])[0])
        config["run_dir"] = str(path)
    say(f"run directory: {path}", quiet=quiet or not main)
    try:  # a run that fails before its first step leaves no half-made directory behind
        if main:
            model, tokenizer = setup_model(config, path, quiet=quiet)
        accelerator.wait_for_everyone()
        if not main:
            model, tokenizer = load_replica(config, path)
        trainer = Trainer(config, model, tokenizer, path, accelerator=accelerator)
    except BaseException:
        if new_dir:
            shutil.rmtree(path, ignore_errors=True)
        raise
    if main:
        recorded = recorded_start_outcomes(config, path, trainer.model)
        if recorded is not None:
            trainer.set_eval_before(recorded)
            say(
                f"eval before RL: {trainer.eval_before.summary()}, measured when the policy was built "
                "(same weights, episodes and sampler seeds; eval.reuse_start_eval=false measures it again)",
                quiet=quiet,
            )
    return trainer.fit(progress=not quiet)


def resume(run_dir: str | Path, *, quiet: bool = False, threads: int | None = None) -> dict[str, Any]:
    """Continue an interrupted run from its newest complete checkpoint.

    The later steps are bitwise those of the uninterrupted run. For that the resumed process
    computes with the torch thread count the run had (recorded in every checkpoint), because
    CPU kernels split their sums by thread: ``threads=None`` restores it for this call (the
    caller's count is put back afterwards, e.g. for the next run of a ``spear compare`` sweep);
    an explicit other count (``--threads``) is used with a warning that the round-off will differ.
    """
    path = Path(run_dir)
    checkpoint = latest_checkpoint(path)
    if (
        (path / FINAL_MODEL).is_dir()
        and checkpoint is not None
        and checkpoint_step(checkpoint) >= (saved_config(path)["steps"])
    ):  # finished (config.yaml may since ask for more steps: then it continues)
        return finished_summary(path, quiet=quiet)
    if checkpoint is None:
        raise ConfigError(f"{path} has no complete checkpoint to resume from")
    before = torch.get_num_threads()
    try:
        return _resume(path, checkpoint, threads, quiet=quiet)
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def finished_summary(run_dir: Path, *, quiet: bool = False) -> dict[str, Any]:
    """``resume`` of a run that already finished (its ``final_model`` is written last): nothing
    is computed or appended; the summary comes from the stored evaluations."""
    say(f"{run_dir} is finished ({run_dir / FINAL_MODEL} is written): nothing to resume", quiet=quiet)
    outcomes = load_outcomes(run_dir)
    before, after = outcomes.get("before"), outcomes.get("after")
    return {
        "eval_before": summarize(before) if before else None,
        "eval_after": summarize(after) if after else None,
        "eval_paired": run_paired_gain(outcomes),
        "run_dir": str(run_dir),
        "is_main": True,
    }


def saved_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as the run computed with it: keys whose default changed when
    they were added get the value of before (:data:`~spear.trainer.config.BEHAVIOUR_BEFORE_KEY`);
    other keys added since take their defaults, each of which keeps the old behaviour
    (model.init, logging.*, rollout.prompt_style, sft.stale_noise, ...)."""
    saved = with_behaviour_it_was_written_with(yaml.safe_load((Path(run_dir) / "config.yaml").read_text()))
    return merge(base_config(), saved, strict=False)


def _resume(path: Path, checkpoint: Path, threads: int | None, *, quiet: bool) -> dict[str, Any]:
    config = saved_config(path)
    validate(config)
    if config["model"]["lora"]["enabled"]:
        raise ConfigError("resuming LoRA runs is not supported yet; start a new run from the saved adapter")
    model, tokenizer = load_model_and_tokenizer(checkpoint / "model", dtype=_dtype(config))
    match_threads(saved_threads(checkpoint), threads, quiet=quiet)  # before anything is computed
    model = _ready_for_rl(model, config)  # LoRA runs were refused above
    accelerator = make_accelerator(config)
    trainer = Trainer(config, model, tokenizer, path, accelerator=accelerator)
    step = trainer.resume()
    say(f"resuming {path} after step {step}", quiet=quiet or not accelerator.is_main_process)
    return trainer.fit(progress=not quiet)


def match_threads(recorded: int | None, requested: int | None, *, quiet: bool = False) -> None:
    """Resume with the run's own torch thread count ``recorded`` unless ``requested`` (the user's
    ``--threads``, already applied) says otherwise; a different count gets a warning."""
    if recorded is None:
        return  # a checkpoint written before spear recorded the count
    if requested is None:
        if torch.get_num_threads() != recorded:
            torch.set_num_threads(recorded)
            say(
                f"using {recorded} torch thread{'s' if recorded > 1 else ''} as the run did, so the "
                "resumed steps are bit-identical to an uninterrupted run (--threads overrides)",
                quiet=quiet,
            )
    elif requested != recorded:
        print(
            f"spear: warning: this run computed with {recorded} torch thread{'s' if recorded > 1 else ''} "
            f"and resumes with {requested} (--threads): its later steps will differ from an "
            "uninterrupted run in float round-off",
            file=sys.stderr,
        )


def evaluate_model(
    model_path: str,
    env_name: str | None,
    episodes: int,
    *,
    env_options: dict[str, Any] | None = None,
    temperature: float = 0.4,
    max_new_tokens: int | None = None,
    max_turns: int | None = None,
    seed: int = 0,
    decode: str | None = None,
) -> EvalResult:
    """``spear eval``: success rate and score of a saved model on the eval split.

    Every model folder spear writes carries ``spear_run.yaml`` (:func:`run_settings`): its
    environment, options and rollout settings are the defaults here; arguments override
    them (``decode``: the rollout decoder, docs/ROLLOUT.md; it changes the speed, not the
    tokens). A folder without it plays with the environment profile's settings
    (``presets/envs/<env>.yaml``), and one line on stderr says which.
    """
    check_model_dir(model_path)  # before anything else: a bad path is not a missing --env
    settings = read_run_settings(model_path)
    trained_env = settings.get("env", {})
    env_name = env_name or trained_env.get("name")
    if env_name is None:
        raise ConfigError(f"{model_path} has no {RUN_SETTINGS}: pass --env")
    if is_import_path(env_name):
        import_env(env_name)  # a bad import path is reported before the model loads
    if settings:
        rollout = settings.get("rollout", {})
        options = dict(trained_env.get("options", {})) if env_name == trained_env.get("name") else {}
    else:
        profile = load_config("spear", [f"env.name={env_name}"])
        rollout, options = profile["rollout"], dict(profile["env"]["options"])
        print(
            f"spear eval: {model_path} has no {RUN_SETTINGS}, so it plays with the {env_label(env_name)} "
            f"profile's settings: layout {rollout['layout']}, history {rollout['history_length']}, "
            f"prompt style {rollout['prompt_style']}, {rollout['max_new_tokens']} new tokens a turn, "
            f"env options {options or '{}'}; if the model was trained otherwise, pass them",
            file=sys.stderr,
        )
    options.update(env_options or {})
    model, tokenizer = load_model_and_tokenizer(model_path, dtype=torch.float32)
    engine = RolloutEngine(
        model,
        tokenizer,
        RolloutConfig(
            group_size=1,
            max_turns=max_turns if max_turns is not None else rollout.get("max_turns"),
            max_new_tokens=max_new_tokens or rollout.get("max_new_tokens", 512),
            max_response_tokens=rollout.get("max_response_tokens", RolloutConfig.max_response_tokens),
            temperature=temperature,
            history_length=rollout.get("history_length", 2),
            layout=rollout.get("layout", "turn"),
            show_admissible=rollout.get("show_admissible", True),
            prompt_style=rollout.get("prompt_style", "full"),
            seed=seed,
            decode=decode or rollout.get("decode", "eager"),
        ),
        env_options={**options, "split": "eval"},
    )
    try:
        records = play_held_out(engine, env_name, episodes, batch_size=eval_batch_size(episodes))
    finally:
        engine.close()
    FailureLog(None).check(records, "evaluation")
    return summarize(episode_outcomes(records))


def read_run_settings(model_dir: str | Path) -> dict[str, Any]:
    """The ``spear_run.yaml`` beside a model ({} when there is none)."""
    path = Path(model_dir) / RUN_SETTINGS
    if not path.is_file():
        return {}
    settings = yaml.safe_load(path.read_text())
    if not isinstance(settings, dict):
        raise ConfigError(f"{path} must hold a YAML mapping (env, rollout), got {type(settings).__name__}")
    return settings


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
