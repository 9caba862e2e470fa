"""Gradient norms of the on-policy and replay updates, before and after clipping, per run.

Usage::

    .venv/bin/python scripts/grad_norms.py sweeps/household-90 /work/sweeps/household-90-step-fixes

For every run of the sweeps given (or a single run directory), from its ``metrics.jsonl``:
the distribution over steps (min, 10th percentile, median, 90th percentile, max) of
``actor/grad_norm`` and ``sil/grad_norm`` (the accumulated gradient's norm before the clip,
mean over the step's optimizer steps) and of the norm applied after clipping
(``*/grad_norm_applied``, logged since 0.2.0; for older runs ``min(norm, actor.grad_clip)``,
which is what ``sil.weight_at: loss`` applies), the share of RL steps whose (mean) norm
was above the clip, and lambda_sil at the first step whose replay norm passed the clip. Markdown table
on stdout (docs/DESIGN.md, "Gradient clipping and lambda_sil").
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml

from spear.experiments.sweep import RUNS, read_metrics


def run_dirs(path: Path) -> list[Path]:
    """The run directories of a sweep (its ``runs/*``), or ``path`` itself when it is a run."""
    if (path / "metrics.jsonl").is_file():
        return [path]
    return sorted(p for p in (path / RUNS).iterdir() if (p / "metrics.jsonl").is_file())


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    cut = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else ordered * 9
    points = (ordered[0], cut[0], statistics.median(ordered), cut[-1], ordered[-1])
    return " / ".join(f"{value:.3g}" for value in points)


def summary(run: Path) -> list[str]:
    config = yaml.safe_load((run / "config.yaml").read_text())
    clip = float(config["actor"]["grad_clip"]) or float("inf")
    weight_at = config.get("sil", {}).get("weight_at", "loss")
    rows = [r for r in read_metrics(run) if r["step"] >= 1 and "rollout/success_rate" in r]
    cells = [run.name, weight_at]
    first_binding = "-"
    for part in ("actor", "sil"):
        norms = [r[f"{part}/grad_norm"] for r in rows if r.get(f"{part}/grad_norm") is not None]
        applied = [
            r.get(f"{part}/grad_norm_applied", min(r[f"{part}/grad_norm"], clip))
            for r in rows
            if r.get(f"{part}/grad_norm") is not None
        ]
        bound = sum(n > clip for n in norms) / len(norms) if norms else None
        cells += [spread(norms), spread(applied), "-" if bound is None else f"{100 * bound:.0f}%"]
        if part == "sil":
            over = [r for r in rows if r.get("sil/grad_norm") is not None and r["sil/grad_norm"] > clip]
            if over:
                first_binding = f"step {over[0]['step']} (lambda_sil {over[0]['schedule/lambda_sil']:.2f})"
    return [*cells, first_binding]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sweep directories or run directories")
    args = parser.parse_args(argv)
    print(
        "| run | sil.weight_at | on-policy norm before clip (min / p10 / median / p90 / max) | after clip | "
        "RL steps above the clip | replay norm before clip | after clip | RL steps above the clip | "
        "replay first above the clip |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.paths:
        for run in run_dirs(path):
            print("| " + " | ".join(summary(run)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
