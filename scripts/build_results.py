"""Generate docs/RESULTS.md from ``spear compare`` sweep directories (never edit it by hand).

Usage::

    .venv/bin/python scripts/build_results.py runs/compare-household-A runs/compare-math-B

For each sweep, in the order given: the command that produced it, the spec, the machine it
ran on, the per-preset table (recomputed from the runs' metrics.jsonl) and the overlay
plots. Plots and CSVs are copied to ``docs/results/<sweep-name>/``, with the generated
section as ``section.md``. ``docs/results/`` is replaced as a whole, so the output depends
only on the directories given and regenerates identically.

A sweep's run directories live where it ran and may be gone later; its section is kept in
the repository. So an argument may also be such a kept folder, ``docs/results/<name>/``
(a ``section.md`` and no ``sweep.json``): its section and files are carried over as they
were generated::

    .venv/bin/python scripts/build_results.py docs/results/household runs/compare-math-B
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from spear.experiments.evidence import (
    BONUS_ON,
    bonus_window,
    bonus_window_table,
    diagnostics_table,
    gains_table,
    pooled_episodes_table,
    run_diagnostics,
    sample_efficiency_table,
    start_gains_table,
)
from spear.experiments.report import (
    OVERLAYS,
    aggregate,
    metric_series,
    read_finished_runs,
    results_markdown,
    run_summary,
)
from spear.experiments.sweep import PLOTS, read_sweep

ASSETS = "results"
COPIED = ("results.csv", "runs.csv")
SECTION = "section.md"


def is_kept_section(path: Path) -> bool:
    """A folder written by this script (``docs/results/<name>/``), not a sweep directory."""
    return (path / SECTION).is_file() and not (path / "sweep.json").is_file()


def read_kept_section(path: Path) -> dict[str, bytes]:
    """Every file of a kept section, read before ``docs/results/`` is replaced."""
    return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}


def copy_assets(sweep_dir: Path, target: Path) -> list[str]:
    """Copy the sweep's plots and CSVs into ``target``; returns the copied plot names."""
    target.mkdir(parents=True)
    for name in COPIED:
        shutil.copyfile(sweep_dir / name, target / name)
    plots = [name for name in OVERLAYS if (sweep_dir / PLOTS / name).is_file()]  # results.md's order
    for name in plots:
        shutil.copyfile(sweep_dir / PLOTS / name, target / name)
    return plots


def sweep_section(sweep_dir: Path, docs_dir: Path) -> str:
    spec, record = read_sweep(sweep_dir)
    runs = read_finished_runs(spec, sweep_dir)
    summaries = [run_summary(run) for run in runs]
    rows = aggregate(summaries, spec.presets)
    link = f"{ASSETS}/{sweep_dir.name}"
    plots = copy_assets(sweep_dir, docs_dir / link)
    table = results_markdown(
        spec,
        record,
        rows,
        title=f"## {sweep_dir.name}",
        plots=[f"{link}/{name}" for name in plots],
        runs_csv=f"{link}/runs.csv",
    )
    diagnostics: dict[str, list] = {}
    outcomes: dict[tuple[str, int], dict] = {}
    curves: dict[tuple[str, int], list] = {}
    records: dict[tuple[str, int], list] = {}
    for run in runs:
        diagnostics.setdefault(run.preset, []).append(run_diagnostics(run.records))
        outcomes[(run.preset, run.seed)] = run.outcomes
        curves[(run.preset, run.seed)] = metric_series(run.records, "rollout/success_rate")
        records[(run.preset, run.seed)] = run.records
    section = "\n".join(
        [
            table.rstrip("\n"),
            "",
            f"### {sweep_dir.name}: gains over the base method, paired by seed (mean ± std of differences)",
            "",
            gains_table(summaries, spec.presets, spec.env),
            "",
            f"### {sweep_dir.name}: final eval against the start, paired by episode (each run)",
            "",
            start_gains_table(summaries, spec.presets),
            "",
            f"### {sweep_dir.name}: final eval success, paired by episode and pooled over seeds",
            "",
            pooled_episodes_table(outcomes, spec.presets),
            "",
            f"### {sweep_dir.name}: sample efficiency, steps to a rollout success both methods reach",
            "",
            sample_efficiency_table(curves, spec.presets),
            "",
            f"### {sweep_dir.name}: mechanism diagnostics (mean over seeds)",
            "",
            diagnostics_table(diagnostics),
            "",
        ]
    )
    if bonus_window(records) is not None:
        section += "\n".join(
            [
                "",
                f"### {sweep_dir.name}: while the tool bonus is on "
                f"(lambda_tool >= {BONUS_ON}; mean ± std over seeds)",
                "",
                bonus_window_table(records, spec.presets),
                "",
            ]
        )
    (docs_dir / link / SECTION).write_text(section)
    return section


def restore_section(name: str, files: dict[str, bytes], docs_dir: Path) -> str:
    """Write a kept section's files back to ``docs/results/<name>/``; returns its text."""
    target = docs_dir / ASSETS / name
    target.mkdir(parents=True)
    for file_name, data in files.items():
        (target / file_name).write_bytes(data)
    return files[SECTION].decode()


def build(sweeps: list[Path], out: Path, command: str, notes: Path | None = None) -> str:
    names = [s.name for s in sweeps]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"sweeps: two sweep directories are named {', '.join(repeated)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = {s.name: read_kept_section(s) for s in sweeps if is_kept_section(s)}
    shutil.rmtree(out.parent / ASSETS, ignore_errors=True)  # generated as a whole: no stale sweeps
    header = [
        "# Results",
        "",
        "Generated by `spear compare` sweeps and this command; do not edit by hand:",
        "",
        f"    {command}",
        "",
        "What each column means, how runs are started and how the values are computed:",
        "[COMPARE.md](COMPARE.md).",
        "",
    ]
    sections = [
        restore_section(s.name, kept[s.name], out.parent) if s.name in kept else sweep_section(s, out.parent)
        for s in sweeps
    ]
    if notes is not None:  # the analysis is written by people; everything above it is generated
        sections.append(f"## Notes (written by hand, from `{notes.name}`)\n\n{notes.read_text().strip()}\n")
    text = "\n".join(header) + "\n" + "\n".join(sections)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweeps", nargs="+", type=Path, help="spear compare sweep directories, or kept docs/results/<name>"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    parser.add_argument("--notes", type=Path, help="a Markdown file of analysis appended verbatim")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "scripts/build_results.py", *argv])
    build([s.resolve() for s in args.sweeps], args.out, command, args.notes)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
