"""``spear compare``: every preset x seed from one shared cold start, summarised side by side.

A sweep directory holds::

    sweep.json                 the sweep's spec and the command lines that ran it
    cold_start/                the shared starting model (built once per sweep)
    runs/<preset>-seed<s>/     ordinary run directories (spear train) + summary.json
    results.md, results.csv    per preset: mean and sample std over seeds
    runs.csv                   one row per preset x seed
    plots/*.png                overlays: one line per preset, mean over seeds, min-max band

The column definitions are in ``docs/COMPARE.md``; :func:`summarise_run` computes them.
Runs are resumable: a run with ``final_model/`` and ``summary.json`` is finished, a run
with a checkpoint is resumed (``spear.trainer.run.resume``), any other is restarted.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import platform
import shutil
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from spear.trainer.checkpoint import atomic_write_text, latest_checkpoint
from spear.trainer.config import ConfigError, load_config, parse_override

SPEC_FILE = "sweep.json"
SUMMARY_FILE = "summary.json"
COLD_START = "cold_start"
RUNS = "runs"
PLOTS = "plots"
DEFAULT_PRESETS = ("grpo", "drbot", "spear", "gigpo", "gigpo+spear")

# Set per run by the sweep itself; overriding them would break "same start, same budget".
RESERVED_KEYS = {
    "seed": "--seeds",
    "steps": "--steps",
    "env.name": "--env",
    "model.path": "--model",
    "run_dir": "--out",
}


@dataclass(frozen=True)
class Column:
    """One summary value: its key in :func:`summarise_run`, its table title and format."""

    key: str
    title: str
    percent: bool
    digits: int


COLUMNS = (
    Column("eval_before", "eval success before RL (%)", True, 1),
    Column("final_success", "final eval success (%)", True, 1),
    Column("success_auc", "rollout success AUC (%)", True, 1),
    Column("eval_auc", "eval success AUC (%)", True, 1),
    Column("tool_calls", "tool calls / episode", False, 2),
    Column("entropy_start", "entropy start", False, 3),
    Column("entropy_middle", "entropy middle", False, 3),
    Column("entropy_end", "entropy end", False, 3),
    Column("time_per_step", "s / step", False, 2),
)

# file name -> (metrics.jsonl key, y label) of the overlay plots
OVERLAYS = {
    "success.png": ("rollout/success_rate", "rollout success rate"),
    "entropy.png": ("actor/entropy", "policy entropy"),
    "tool_calls.png": ("rollout/tool_calls", "tool calls per episode"),
}


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs; persisted in ``sweep.json`` and compared on every re-run."""

    env: str
    presets: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int
    overrides: tuple[str, ...] = ()
    model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "presets": list(self.presets),
            "seeds": list(self.seeds),
            "steps": self.steps,
            "overrides": list(self.overrides),
            "model": self.model,
        }


def sweep_spec(
    presets: Sequence[str] = DEFAULT_PRESETS,
    seeds: int = 3,
    steps: int | None = None,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    model: str | None = None,
) -> SweepSpec:
    """Check the user's arguments and resolve defaults (env and steps from the base config).

    ``seeds=n`` means seeds ``0 .. n-1``. Raises :class:`ConfigError` naming the argument.
    """
    presets = tuple(p.strip() for p in presets if p.strip())
    if not presets:
        raise ConfigError("--presets needs at least one preset")
    duplicates = sorted({p for p in presets if presets.count(p) > 1})
    if duplicates:
        raise ConfigError(f"--presets lists {', '.join(duplicates)} more than once")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a positive number of seeds, got {seeds!r}")
    for item in overrides:
        keys, _ = parse_override(item)
        dotted = ".".join(keys)
        if dotted in RESERVED_KEYS:
            raise ConfigError(f"override '{item}': spear compare sets {dotted}; use {RESERVED_KEYS[dotted]}")
    if model is not None:
        if not Path(model).exists():
            raise ConfigError(f"--model {model} does not exist (a local Hugging Face model folder is needed)")
        model = str(Path(model).resolve())  # runs and resumes may start from another directory
    head = [f"env.name={env}"] if env is not None else []
    defaults = load_config(presets[0], [*head, *overrides])
    return SweepSpec(
        env=defaults["env"]["name"],
        presets=presets,
        seeds=tuple(range(seeds)),
        steps=defaults["steps"] if steps is None else steps,
        overrides=tuple(overrides),
        model=model,
    )


def default_sweep_dir(spec: SweepSpec) -> Path:
    return Path("runs") / f"compare-{spec.env}-{time.strftime('%Y%m%d-%H%M%S')}"


def machine_info() -> dict[str, Any]:
    """What the timings in a sweep depend on."""
    import torch

    device = f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def open_sweep(
    sweep_dir: Path, spec: SweepSpec, *, start: Path, command: str, machine: dict[str, Any]
) -> dict[str, Any]:
    """Create or re-open a sweep directory; refuse one started with a different spec.

    Records the starting model and, once each, every distinct (command, machine) that
    worked on the sweep.
    """
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SPEC_FILE
    wanted = spec.as_dict()
    if path.is_file():
        record = json.loads(path.read_text())
        differ = [k for k in wanted if record["spec"].get(k) != wanted[k]]
        if differ:
            details = "; ".join(
                f"{k}: sweep has {record['spec'].get(k)!r}, now {wanted[k]!r}" for k in differ
            )
            raise ConfigError(
                f"{sweep_dir} holds a sweep with a different spec ({details}); use another --out"
            )
    elif sweep_dir.is_dir() and any(sweep_dir.iterdir()):
        raise ConfigError(f"--out {sweep_dir} exists and is not a sweep directory (no {SPEC_FILE})")
    else:
        inside = start.is_relative_to(sweep_dir.resolve())
        record = {
            "spec": wanted,
            "start": start.relative_to(sweep_dir.resolve()).as_posix() if inside else str(start),
            "invocations": [],
        }
    invocation = {"command": command, "machine": machine}
    if invocation not in record["invocations"]:
        record["invocations"].append(invocation)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return record


def read_sweep(sweep_dir: Path) -> tuple[SweepSpec, dict[str, Any]]:
    """The spec of a sweep directory and its whole record (start model, invocations)."""
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no {SPEC_FILE})")
    record = json.loads(path.read_text())
    s = record["spec"]
    spec = SweepSpec(
        s["env"], tuple(s["presets"]), tuple(s["seeds"]), s["steps"], tuple(s["overrides"]), s["model"]
    )
    return spec, record


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
    """The config of the shared cold start: the first preset and the first seed."""
    model = [f"model.path={_quoted(spec.model)}"] if spec.model is not None else []
    return load_config(spec.presets[0], [*_sweep_overrides(spec), *model, f"seed={spec.seeds[0]}"])


def start_model(spec: SweepSpec, sweep_dir: Path, cold_config: dict[str, Any]) -> Path:
    """The model every run starts from: the shared cold start, or ``--model`` as given."""
    from spear.trainer.run import prepared_model_path

    # cold_config carries model.path = --model, so this is the cold start's output or --model
    return prepared_model_path(cold_config, Path(sweep_dir).resolve() / COLD_START)


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


# ----------------------------------------------------------------------------- running
def ensure_cold_start(spec: SweepSpec, sweep_dir: Path, cold_config: dict[str, Any], *, quiet: bool) -> None:
    """Build the shared starting model once: into a temporary folder, renamed when complete,
    so an interrupted cold start is redone rather than half-used."""
    from spear.trainer.run import runs_sft, setup_model

    if spec.model is not None and not runs_sft(cold_config):
        return
    final = Path(sweep_dir) / COLD_START
    if final.is_dir():
        return
    partial = Path(sweep_dir) / f".{COLD_START}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    import torch

    torch.manual_seed(cold_config["seed"])
    setup_model(copy.deepcopy(cold_config), partial, quiet=quiet)
    os.replace(partial, final)
    if not quiet:
        print(f"shared cold start: {final}", flush=True)


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "final_model").is_dir() and (Path(run_dir) / SUMMARY_FILE).is_file()


def run_one(plan: RunPlan) -> dict[str, Any]:
    """Train one preset x seed quietly (or resume it); returns and stores its summary."""
    from spear.trainer.run import resume, train

    if is_finished(plan.run_dir):
        return json.loads((plan.run_dir / SUMMARY_FILE).read_text())
    resumable = not plan.config["model"]["lora"]["enabled"]  # run.resume refuses LoRA runs
    if resumable and latest_checkpoint(plan.run_dir) is not None:
        resume(plan.run_dir, quiet=True)
    else:
        # no checkpoint: metrics.jsonl is appended to, so a fresh start needs an empty folder
        shutil.rmtree(plan.run_dir, ignore_errors=True)
        train(copy.deepcopy(plan.config), run_dir=plan.run_dir, quiet=True)
    summary = {"preset": plan.preset, "seed": plan.seed, **summarise_run(read_metrics(plan.run_dir))}
    atomic_write_text(plan.run_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of a run's ``metrics.jsonl``; a torn last line (killed mid-write) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def steps_logged(run_dir: Path) -> int:
    return len({r["step"] for r in read_metrics(run_dir) if r["step"] >= 1 and "rollout/success_rate" in r})


@contextmanager
def _follow(bar: Any, run_dir: Path, offset: int, every_s: float = 1.0) -> Iterator[None]:
    """Move the sweep's bar with the steps the (quiet) current run logs."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s):
            bar.n = offset + steps_logged(run_dir)
            bar.refresh()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def compare(spec: SweepSpec, sweep_dir: str | Path, *, command: str, quiet: bool = False) -> list[dict]:
    """Run (or finish) a sweep and write its results; returns the per-preset rows.

    Every config is loaded before anything is written or computed, so an unknown preset
    or a bad override fails at once.
    """
    from tqdm.auto import tqdm

    sweep_dir = Path(sweep_dir)
    cold_config = cold_start_config(spec)
    start = start_model(spec, sweep_dir, cold_config)
    plans = plan_runs(spec, sweep_dir, start)
    check_environments(plans)
    open_sweep(sweep_dir, spec, start=start, command=command, machine=machine_info())
    if not quiet:
        print(f"sweep directory: {sweep_dir}", flush=True)
    ensure_cold_start(spec, sweep_dir, cold_config, quiet=quiet)
    finished = sum(is_finished(plan.run_dir) for plan in plans)
    bar = tqdm(
        total=len(plans) * spec.steps,
        initial=finished * spec.steps,
        desc="compare",
        unit="step",
        disable=quiet,
        dynamic_ncols=True,
    )
    try:
        for index, plan in enumerate(plans):
            if is_finished(plan.run_dir):
                continue
            bar.set_postfix_str(f"run {index + 1}/{len(plans)}: {plan.name}")
            with nullcontext() if quiet else _follow(bar, plan.run_dir, finished * spec.steps):
                summary = run_one(plan)
            finished += 1
            bar.n = finished * spec.steps
            bar.refresh()
            if summary["final_success"] is not None:
                bar.write(f"{plan.name}: final eval success {100 * summary['final_success']:.1f}%")
    finally:
        bar.close()
    return write_results(sweep_dir)


# ----------------------------------------------------------------------------- summaries
def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _series(records: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of the RL steps (step >= 1) that logged ``key``, by step."""
    points = {r["step"]: r[key] for r in records if r["step"] >= 1 and r.get(key) is not None}
    return sorted(points.items())


def _windows(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Means of the first, middle and last max(1, n // 10) values."""
    n = len(values)
    if n == 0:
        return None, None, None
    k = max(1, n // 10)
    middle = (n - k) // 2
    return _mean(values[:k]), _mean(values[middle : middle + k]), _mean(values[-k:])


def _eval_curve(records: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """Eval success at step 0 (before RL), the periodic evals and the final eval (last wins)."""
    points: dict[int, float] = {}
    for r in records:
        if r.get("eval/success_rate") is not None:
            points[r["step"]] = r["eval/success_rate"]
        if r.get("eval/final_success_rate") is not None:
            points[r["step"]] = r["eval/final_success_rate"]
    return sorted(points.items())


def _normalised_area(points: list[tuple[int, float]]) -> float | None:
    """Trapezoidal area under (step, value) divided by the step range."""
    if len(points) < 2:
        return None
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))
    return area / (points[-1][0] - points[0][0])


def summarise_run(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison values of one run from its ``metrics.jsonl`` lines (docs/COMPARE.md).

    None where the run did not log the inputs (e.g. ``eval.final_episodes=0``).
    """
    success = [v for _, v in _series(records, "rollout/success_rate")]
    before = [r["eval/success_rate"] for r in records if r["step"] == 0 and "eval/success_rate" in r]
    finals = [r["eval/final_success_rate"] for r in records if r.get("eval/final_success_rate") is not None]
    start, middle, end = _windows([v for _, v in _series(records, "actor/entropy")])
    return {
        "steps": len(success),
        "eval_before": before[-1] if before else None,
        "final_success": finals[-1] if finals else None,
        "success_auc": _mean(success),
        "eval_auc": _normalised_area(_eval_curve(records)),
        "tool_calls": _mean([v for _, v in _series(records, "rollout/tool_calls")]),
        "entropy_start": start,
        "entropy_middle": middle,
        "entropy_end": end,
        "time_per_step": _mean([v for _, v in _series(records, "time/step")]),
    }


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that exist; std None if n < 2."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else None


def aggregate(summaries: list[dict[str, Any]], presets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per preset (in ``presets`` order): ``<key>_mean`` and ``<key>_std`` per column."""
    rows = []
    for preset in presets:
        runs = [s for s in summaries if s["preset"] == preset]
        row: dict[str, Any] = {"preset": preset, "seeds": len(runs)}
        for column in COLUMNS:
            row[f"{column.key}_mean"], row[f"{column.key}_std"] = mean_std([s[column.key] for s in runs])
        rows.append(row)
    return rows


def finished_runs(spec: SweepSpec, sweep_dir: Path) -> list[tuple[str, int, Path]]:
    """(preset, seed, run_dir) of the sweep's finished runs, seed-major."""
    runs = [(p, s, Path(sweep_dir) / RUNS / f"{p}-seed{s}") for s in spec.seeds for p in spec.presets]
    return [run for run in runs if is_finished(run[2])]


def run_summaries(spec: SweepSpec, sweep_dir: Path) -> list[dict[str, Any]]:
    """Summaries of the finished runs, recomputed from their metrics.jsonl."""
    return [
        {"preset": p, "seed": s, "run_dir": f"{RUNS}/{d.name}", **summarise_run(read_metrics(d))}
        for p, s, d in finished_runs(spec, sweep_dir)
    ]


# ----------------------------------------------------------------------------- output
def _cell(mean: float | None, std: float | None, column: Column) -> str:
    if mean is None:
        return "n/a"
    scale = 100.0 if column.percent else 1.0
    text = f"{scale * mean:.{column.digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{column.digits}f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The per-preset table: mean ± sample std over seeds."""
    header = ["preset", "seeds", *(c.title for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["preset"], str(row["seeds"])]
        cells += [_cell(row[f"{c.key}_mean"], row[f"{c.key}_std"], c) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Full-precision values; an empty cell where a value does not exist."""
    fields = list(rows[0]) if rows else ["preset"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def curves(
    runs: list[list[dict[str, Any]]], key: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps, mean, min and max over runs of ``key`` (each step over the runs that logged it)."""
    by_step: dict[int, list[float]] = {}
    for records in runs:
        for step, value in _series(records, key):
            by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return (
        steps,
        [statistics.fmean(by_step[s]) for s in steps],
        [min(by_step[s]) for s in steps],
        [max(by_step[s]) for s in steps],
    )


def plot_overlay(series: dict[str, list[list[dict[str, Any]]]], key: str, ylabel: str, path: Path) -> bool:
    """One line per preset (mean over seeds) with a min-max band; False if nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for preset, runs in series.items():
        steps, mean, low, high = curves(runs, key)
        if not steps:
            continue
        (line,) = ax.plot(steps, mean, label=preset, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        drawn = True
    if drawn:
        ax.set_xlabel("RL step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel}: mean over seeds, band min-max", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return drawn


def write_plots(spec: SweepSpec, sweep_dir: Path) -> list[Path]:
    series: dict[str, list[list[dict[str, Any]]]] = {p: [] for p in spec.presets}
    for preset, _, run_dir in finished_runs(spec, sweep_dir):
        series[preset].append(read_metrics(run_dir))
    out = Path(sweep_dir) / PLOTS
    written = []
    for filename, (key, ylabel) in OVERLAYS.items():
        if plot_overlay(series, key, ylabel, out / filename):
            written.append(out / filename)
        else:
            (out / filename).unlink(missing_ok=True)  # no stale plot for build_results to copy
    return written


def describe_machine(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu_count']} CPUs ({machine['system']}), torch {machine['torch']} "
        f"(intra-op threads: {machine['torch_threads']}), device {machine['device']}, "
        f"Python {machine['python']}"
    )


def describe_start(spec: SweepSpec, start: str) -> str:
    """How the shared starting model was made, from its path recorded in sweep.json."""
    model = f"`{spec.model}`" if spec.model is not None else "the embedded model"
    if not start.startswith(COLD_START):
        return f"{model} as given (no SFT)"
    how = "cold-started once by SFT" if start.endswith("sft_model") else "built once, no SFT"
    return f"{model}, {how} (`{start}`)"


def results_markdown(
    spec: SweepSpec,
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    title: str,
    plots: list[str],
    runs_csv: str,
) -> str:
    """A sweep's report (``results.md``, and each section of docs/RESULTS.md); ``plots`` and
    ``runs_csv`` are links relative to the Markdown file."""
    invocations = record["invocations"]
    commands = list(dict.fromkeys(i["command"] for i in invocations))
    machines = list(dict.fromkeys(describe_machine(i["machine"]) for i in invocations))
    overrides = ", ".join(f"`{o}`" for o in spec.overrides) or "none"
    lines = [
        title,
        "",
        "Command:",
        "",
        *(f"    {c}" for c in commands),
        "",
        f"- environment: `{spec.env}`; {spec.steps} RL steps per run",
        f"- presets: {', '.join(spec.presets)}; seeds: {', '.join(map(str, spec.seeds))}",
        f"- every run starts from {describe_start(spec, record['start'])}",
        f"- overrides: {overrides}",
        f"- machine: {'; '.join(machines)}",
        "",
        markdown_table(rows),
        "Mean ± sample standard deviation over seeds (no ± with a single seed); the columns are",
        f"defined in docs/COMPARE.md. One row per run: [runs.csv]({runs_csv}).",
        "",
        *(f"![{Path(p).stem}]({p})" for p in plots),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """results.md, results.csv, runs.csv and the overlay plots of a sweep's finished runs."""
    sweep_dir = Path(sweep_dir)
    spec, record = read_sweep(sweep_dir)
    summaries = run_summaries(spec, sweep_dir)
    rows = aggregate(summaries, spec.presets)
    write_csv(sweep_dir / "results.csv", rows)
    write_csv(sweep_dir / "runs.csv", summaries)
    plots = [p.relative_to(sweep_dir).as_posix() for p in write_plots(spec, sweep_dir)]
    report = results_markdown(
        spec, record, rows, title=f"# spear compare: {spec.env}", plots=plots, runs_csv="runs.csv"
    )
    atomic_write_text(sweep_dir / "results.md", report)
    return rows
