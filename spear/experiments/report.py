"""Summaries of a sweep's runs: the comparison table, CSVs, overlay plots and ``results.md``.

The column definitions are in ``docs/COMPARE.md``; :func:`summarise_run` computes them
from a run's ``metrics.jsonl``. ``scripts/build_results.py`` builds docs/RESULTS.md from
the same functions.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from spear.experiments.sweep import (
    COLD_START,
    PLOTS,
    RUNS,
    SweepSpec,
    finished_runs,
    read_metrics,
    read_sweep,
)
from spear.trainer.checkpoint import atomic_write_text
from spear.trainer.evaluate import load_outcomes, run_paired_gain


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


# ----------------------------------------------------------------------------- summaries
def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def metric_series(records: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
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


def summarise_run(records: list[dict[str, Any]], outcomes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The comparison values of one run from its ``metrics.jsonl`` lines and its per-episode
    ``eval_outcomes.json`` (``outcomes``, for the paired gain), docs/COMPARE.md.

    None where the run did not log the inputs (e.g. ``eval.final_episodes=0``, or a run
    written before per-episode outcomes were kept).
    """
    paired = run_paired_gain(outcomes or {})
    success = [v for _, v in metric_series(records, "rollout/success_rate")]
    before = [r["eval/success_rate"] for r in records if r["step"] == 0 and "eval/success_rate" in r]
    finals = [r["eval/final_success_rate"] for r in records if r.get("eval/final_success_rate") is not None]
    start, middle, end = _windows([v for _, v in metric_series(records, "actor/entropy")])
    return {
        "steps": len(success),
        "eval_before": before[-1] if before else None,
        "final_success": finals[-1] if finals else None,
        "success_auc": _mean(success),
        "eval_auc": _normalised_area(_eval_curve(records)),
        "tool_calls": _mean([v for _, v in metric_series(records, "rollout/tool_calls")]),
        "entropy_start": start,
        "entropy_middle": middle,
        "entropy_end": end,
        "time_per_step": _mean([v for _, v in metric_series(records, "time/step")]),
        "paired_gain": paired.gain if paired else None,
        "paired_gain_low": paired.ci[0] if paired else None,
        "paired_gain_high": paired.ci[1] if paired else None,
        "paired_p": paired.p_value if paired else None,
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


@dataclass(frozen=True)
class FinishedRun:
    """A finished run of a sweep, read once: its ``metrics.jsonl`` lines and its per-episode
    evaluation outcomes."""

    preset: str
    seed: int
    run_dir: Path
    records: list[dict[str, Any]]
    outcomes: dict[str, Any]


def read_finished_runs(spec: SweepSpec, sweep_dir: Path) -> list[FinishedRun]:
    """The sweep's finished runs, seed-major, with their metrics and outcomes."""
    return [
        FinishedRun(p, s, d, read_metrics(d), load_outcomes(d)) for p, s, d in finished_runs(spec, sweep_dir)
    ]


def run_summary(run: FinishedRun) -> dict[str, Any]:
    """A run's summary, recomputed from its metrics.jsonl (:func:`summarise_run`)."""
    return {
        "preset": run.preset,
        "seed": run.seed,
        "run_dir": f"{RUNS}/{run.run_dir.name}",
        **summarise_run(run.records, run.outcomes),
    }


def run_summaries(spec: SweepSpec, sweep_dir: Path) -> list[dict[str, Any]]:
    """Summaries of the finished runs, recomputed from their metrics.jsonl."""
    return [run_summary(run) for run in read_finished_runs(spec, sweep_dir)]


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
        for step, value in metric_series(records, key):
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


def describe_start(spec: SweepSpec, start: str, start_policy: dict[str, Any] | None = None) -> str:
    """How the shared starting model was made, from its path recorded in sweep.json."""
    model = f"`{spec.model}`" if spec.model is not None else "the embedded model"
    if spec.init == "shipped":
        sha = f", model.safetensors sha256 {start_policy['sha256'][:12]}" if start_policy else ""
        folder = Path(start_policy["path"]).name if start_policy else spec.env
        # the expert clone's folder is its environment's name; another policy is named by its folder
        which = spec.env if folder == spec.env else f"{spec.env} (`{folder}`)"
        model = f"the shipped starting policy of {which}{sha}"
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
        f"- every run starts from {describe_start(spec, record['start'], record.get('start_policy'))}",
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
