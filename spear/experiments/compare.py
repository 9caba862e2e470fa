"""``spear compare``: every preset x seed from one shared start, summarised side by side.

The shared start is the shipped starting policy of the environment
(:mod:`spear.models.shipped`) when the package has one, else one cold start built for
the sweep (``--from-scratch`` forces that), or ``--model``.

The sweep directory's layout is in :mod:`spear.experiments.sweep`, the tables and plots in
:mod:`spear.experiments.report`. Runs are resumable: a run with ``summary.json`` is finished
(also when archived without its weights, :func:`spear.experiments.sweep.archive_sweep`), a run
with a checkpoint is resumed (``spear.trainer.run.resume``), any other is restarted.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spear.experiments.report import summarise_run, write_results
from spear.experiments.sweep import (
    COLD_START,
    RUNS,
    SUMMARY_FILE,
    SweepSpec,
    is_finished,
    machine_info,
    open_sweep,
    read_metrics,
)
from spear.trainer.checkpoint import atomic_write_text, latest_checkpoint, staged_folder
from spear.trainer.config import ConfigError, load_config
from spear.trainer.evaluate import load_outcomes


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class RunPlan:
    """One preset x seed of a sweep with its fully resolved, validated config."""

    preset: str
    seed: int
    run_dir: Path
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run_dir.name


def _sweep_overrides(spec: SweepSpec) -> list[str]:
    return [f"env.name={spec.env}", f"steps={spec.steps}", *spec.overrides]


def _quoted(path: str | Path) -> str:
    return json.dumps(str(path))  # a JSON string is a YAML scalar: paths stay strings


def cold_start_config(spec: SweepSpec) -> dict[str, Any]:
    """The config of the shared start: the first preset and the first seed."""
    model = [f"model.path={_quoted(spec.model)}"] if spec.model is not None else []
    init = [f"model.init={spec.init}"] if spec.init is not None else []
    return load_config(spec.presets[0], [*_sweep_overrides(spec), *model, *init, f"seed={spec.seeds[0]}"])


def start_model(spec: SweepSpec, sweep_dir: Path, cold_config: dict[str, Any]) -> Path:
    """The model every run starts from: the shared cold start, the shipped starting policy,
    or ``--model`` as given."""
    from spear.trainer.run import prepared_model_path

    # cold_config carries model.path = --model and model.init, so this is the cold start's
    # output, the shipped policy's folder or --model
    return prepared_model_path(cold_config, Path(sweep_dir).resolve() / COLD_START)


def start_policy_record(spec: SweepSpec, start: Path) -> dict[str, Any] | None:
    """For a sweep from the shipped policy: its folder and weights' sha256, after verifying
    every file against its manifest (a damaged policy fails here, before any compute)."""
    if spec.init != "shipped":
        return None
    from spear.models.shipped import verify_starting_policy

    path = start
    manifest = verify_starting_policy(path)
    return {
        "path": str(path),
        "sha256": manifest["files"]["model.safetensors"]["sha256"],
        "command": manifest["command"],
    }


def plan_runs(spec: SweepSpec, sweep_dir: Path, start: Path) -> list[RunPlan]:
    """Every preset x seed starting from ``start``, seed-major (all presets of seed 0 first,
    so an interrupted sweep already compares every preset). Loads every config: config
    errors surface here."""
    plans = []
    for seed in spec.seeds:
        for preset in spec.presets:
            overrides = [
                *_sweep_overrides(spec),
                f"model.path={_quoted(start)}",
                "sft.enabled=false",
                f"seed={seed}",
            ]
            run_dir = Path(sweep_dir) / RUNS / f"{preset}-seed{seed}"
            plans.append(RunPlan(preset, seed, run_dir, load_config(preset, overrides)))
    return plans


def check_environments(plans: list[RunPlan]) -> None:
    """Construct each distinct environment once, so bad ``env.options`` fail before compute
    (and before they are recorded as the sweep's spec)."""
    from spear.envs import make

    seen = []
    for plan in plans:
        env = plan.config["env"]
        if env in seen:
            continue
        seen.append(env)
        try:
            make(env["name"], **env["options"]).close()
        except (TypeError, ValueError, ImportError) as exc:
            raise ConfigError(f"config key 'env.options' of {env['name']}: {exc}") from exc


# keys in which the runs of one preset differ by design: everything else is the method and
# the shared settings, which a sweep's runs must share to be compared
PER_RUN_KEYS = ("seed", "run_dir", "model.path")


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _kept(plan: RunPlan) -> bool:
    """A run the sweep keeps as it is (finished) or continues as it was computed (resumed)."""
    resumable = not plan.config["model"]["lora"]["enabled"]
    return is_finished(plan.run_dir) or (resumable and latest_checkpoint(plan.run_dir) is not None)


def check_same_rules(plans: list[RunPlan], sweep_dir: Path) -> None:
    """Refuse to start a run whose resolved config differs from the kept runs of its preset in
    anything but :data:`PER_RUN_KEYS`: spear's defaults changed since the sweep began, so the
    new run would be trained by other rules than its siblings, and the sweep would compare
    unlike with unlike. Kept runs are read as they were computed
    (:func:`spear.trainer.run.saved_config`)."""
    from spear.trainer.run import saved_config

    kept = {plan.name: _kept(plan) for plan in plans}
    reference: dict[str, tuple[str, dict[str, Any]]] = {}
    for plan in plans:
        if plan.preset not in reference and kept[plan.name] and (plan.run_dir / "config.yaml").is_file():
            reference[plan.preset] = (plan.name, _flat(saved_config(plan.run_dir)))
    problems = []
    for plan in plans:
        if plan.preset not in reference or kept[plan.name]:
            continue
        name, before = reference[plan.preset]
        now = _flat(plan.config)
        differ = sorted(
            k for k in before.keys() | now.keys() if k not in PER_RUN_KEYS and before.get(k) != now.get(k)
        )
        if differ:
            changes = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ)
            problems.append(f"{plan.name} ({changes}; against {name})")
    if problems:
        raise ConfigError(
            f"{sweep_dir}: spear's defaults changed since this sweep's runs were trained, so "
            f"{'; '.join(problems)} would be trained by other rules than the runs of its preset "
            "already there; continue the sweep with the spear version that began it, or use "
            "another --out"
        )


# ----------------------------------------------------------------------------- running
def ensure_cold_start(spec: SweepSpec, sweep_dir: Path, cold_config: dict[str, Any], *, quiet: bool) -> None:
    """Build the shared starting model once: into a temporary folder, renamed when complete,
    so an interrupted cold start is redone rather than half-used."""
    from spear.trainer.run import runs_sft, setup_model, start_kind

    if start_kind(cold_config) != "scratch" and not runs_sft(cold_config):
        return  # runs start from --model or the shipped policy as they are
    final = Path(sweep_dir) / COLD_START
    if final.is_dir():
        return
    import torch

    with staged_folder(final) as partial:
        torch.manual_seed(cold_config["seed"])
        setup_model(copy.deepcopy(cold_config), partial, quiet=quiet)
    if not quiet:
        print(f"shared cold start: {final}", flush=True)


def run_one(plan: RunPlan) -> dict[str, Any]:
    """Train one preset x seed quietly (or resume it); returns and stores its summary."""
    from spear.trainer.run import resume, train

    if is_finished(plan.run_dir):
        return json.loads((plan.run_dir / SUMMARY_FILE).read_text())
    if _kept(plan):  # a checkpoint to resume (run.resume refuses LoRA runs: those restart)
        resume(plan.run_dir, quiet=True)
    else:
        # no checkpoint: metrics.jsonl is appended to, so a fresh start needs an empty folder
        shutil.rmtree(plan.run_dir, ignore_errors=True)
        train(copy.deepcopy(plan.config), run_dir=plan.run_dir, quiet=True)
    summary = {
        "preset": plan.preset,
        "seed": plan.seed,
        **summarise_run(read_metrics(plan.run_dir), load_outcomes(plan.run_dir)),
    }
    atomic_write_text(plan.run_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def steps_logged(run_dir: Path) -> int:
    return len({r["step"] for r in read_metrics(run_dir) if r["step"] >= 1 and "rollout/success_rate" in r})


@contextmanager
def _follow(bar: Any, plans: list[RunPlan], steps: int, every_s: float = 1.0) -> Iterator[None]:
    """Move the sweep's bar with the steps the (quiet) runs log, however many run at once."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s):
            bar.n = sum(steps if is_finished(p.run_dir) else steps_logged(p.run_dir) for p in plans)
            bar.refresh()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _start_worker(threads: int, hf_progress_bars: bool, stop: Any, no_more_runs: Any) -> None:
    """Give a spawned run process this process's torch thread count and HF progress-bar
    setting: a spawned process starts from defaults, so without this the CLI's choice to
    hide transformers' save/load bars would not reach the runs.

    An idle worker ignores Ctrl-C and SIGTERM: a terminal sends Ctrl-C to the whole process
    group, and a worker waiting for its next run would otherwise die with a traceback (and a
    dead worker breaks the pool, taking the running runs down before their checkpoints). A
    running one takes them as the trainer does (:func:`_run_in_worker`). A thread stops the
    worker's run when the parent asks (``stop``) or dies (:func:`_watch_parent`).
    """
    import multiprocessing
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a signal may come while torch imports
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch
    from transformers.utils import logging as hf_logging

    global _NO_MORE_RUNS
    _NO_MORE_RUNS = no_more_runs
    parent = multiprocessing.parent_process()
    threading.Thread(target=_watch_parent, args=(stop, parent.sentinel), daemon=True).start()
    torch.set_num_threads(threads)
    if not hf_progress_bars:
        hf_logging.disable_progress_bar()


_TRAINING = threading.Lock()  # held by a pool worker while a run trains (_run_in_worker)
_NO_MORE_RUNS: Any = None  # the sweep's event: the parent is stopping, start no queued run


def _watch_parent(stop: Any, parent_sentinel: int) -> None:
    """Wait until the parent sets ``stop`` (it got SIGTERM) or dies (SIGKILL, a crash), then
    SIGTERM this worker: a run in progress stops at its next step boundary with its checkpoint
    (the handler runs in the main thread, where it trains). Once the parent is gone, end the
    worker as soon as no run trains: an idle worker would wait for work forever, since the
    pool's queue stays open in the workers themselves."""
    import os
    import signal
    import sys
    from multiprocessing.connection import wait

    while not stop.wait(timeout=1.0) and not wait([parent_sentinel], timeout=0):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    wait([parent_sentinel])  # a parent alive ends the pool itself
    with _TRAINING:
        sys.stderr.flush()
        os._exit(1)  # no interpreter shutdown: it would wait for the pool's queue threads


def _run_in_worker(plan: RunPlan) -> dict[str, Any]:
    """``run_one`` in a pool worker, with Ctrl-C and SIGTERM handled as in a foreground run
    while it trains: the run stops at a step boundary and its ``TrainingInterrupted`` comes
    back to the parent as the future's exception. A run queued before the parent stopped or
    died does not start."""
    import multiprocessing
    import signal

    from spear.trainer.interrupt import SigtermAsInterrupt

    # handlers before the check: a stop that comes after it must reach the run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with SigtermAsInterrupt(), _TRAINING:
            if _NO_MORE_RUNS.is_set() or not multiprocessing.parent_process().is_alive():
                raise KeyboardInterrupt
            return run_one(plan)
    except KeyboardInterrupt:
        # the sweep is stopping; this run may stop sooner than the parent hears of it, and
        # this worker or a sibling must not take a queued run meanwhile
        _NO_MORE_RUNS.set()
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_all(plans: list[RunPlan], jobs: int) -> Iterator[tuple[RunPlan, dict[str, Any]]]:
    """``run_one`` of every plan, ``jobs`` at a time (in fresh processes when ``jobs > 1``,
    set up by ``_start_worker``), yielding each summary as its run ends.

    Ctrl-C in a terminal reaches every process of the group, so each running run stops by
    itself; SIGTERM reaches this process alone, which passes it on through ``stop``.
    """
    if jobs == 1:
        for plan in plans:
            yield plan, run_one(plan)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch
    from transformers.utils import logging as hf_logging

    from spear.trainer.interrupt import SigtermAsInterrupt

    spawn = multiprocessing.get_context("spawn")  # a forked torch process can deadlock
    stop, no_more_runs = spawn.Event(), spawn.Event()

    def on_sigterm() -> None:
        no_more_runs.set()
        stop.set()

    setup = (torch.get_num_threads(), hf_logging.is_progress_bar_enabled(), stop, no_more_runs)
    pool = ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_start_worker, initargs=setup)
    try:
        with SigtermAsInterrupt(on_sigterm):
            futures = {pool.submit(_run_in_worker, plan): plan for plan in plans}
            for future in as_completed(futures):
                yield futures[future], future.result()
    finally:
        # on Ctrl-C, SIGTERM or a failed run start no queued run (the pool queues one ahead,
        # which cancel_futures cannot take back); the running ones stop at their next step
        # boundary, which is waited for
        no_more_runs.set()
        pool.shutdown(wait=True, cancel_futures=True)


def compare(
    spec: SweepSpec, sweep_dir: str | Path, *, command: str, quiet: bool = False, jobs: int = 1
) -> list[dict]:
    """Run (or finish) a sweep, ``jobs`` runs at a time, and write its results; returns the
    per-preset rows.

    Every config is loaded before anything is written or computed, so an unknown preset
    or a bad override fails at once. Runs are independent (each has its own seed and
    folder), so running them concurrently changes no result, only the wall time.
    """
    from tqdm.auto import tqdm

    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    sweep_dir = Path(sweep_dir)
    cold_config = cold_start_config(spec)
    start = start_model(spec, sweep_dir, cold_config)
    plans = plan_runs(spec, sweep_dir, start)
    check_environments(plans)
    check_same_rules(plans, sweep_dir)
    open_sweep(
        sweep_dir,
        spec,
        start=start,
        command=command,
        machine=machine_info(),
        start_policy=start_policy_record(spec, start),
    )
    if not quiet:
        print(f"sweep directory: {sweep_dir}", flush=True)
        if spec.init == "shipped":
            print(f"every run starts from the shipped {spec.env} policy: {start}", flush=True)
    ensure_cold_start(spec, sweep_dir, cold_config, quiet=quiet)
    todo = [plan for plan in plans if not is_finished(plan.run_dir)]
    bar = tqdm(
        total=len(plans) * spec.steps,
        initial=(len(plans) - len(todo)) * spec.steps,
        desc="compare",
        unit="step",
        disable=quiet,
        dynamic_ncols=True,
    )
    try:
        with nullcontext() if quiet else _follow(bar, plans, spec.steps):
            for plan, summary in _run_all(todo, min(jobs, max(1, len(todo)))):
                if summary["final_success"] is not None:
                    bar.write(f"{plan.name}: final eval success {100 * summary['final_success']:.1f}%")
    finally:
        bar.close()
    return write_results(sweep_dir)
