"""Curves and a table of single training runs side by side (the settings search in docs/TUNING.md).

    python scripts/tuning_report.py NAME=RUN_DIR [NAME=RUN_DIR ...] --out docs/tuning/NAME

For each run: rollout success, invalid-action rate and entropy per step (raw and as a trailing
5-step mean) in ``<out>/<name>.csv``; overlay plots of the 5-step means; and a Markdown table
of the eval before/after RL (with 95% intervals where the run logged them), printed and
written to ``<out>/runs.md``. Unlike ``spear compare`` the runs need not share a preset,
settings or length: this is for looking at candidate settings, one run each.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from spear.experiments.report import plot_overlay

KEYS = ("rollout/success_rate", "rollout/invalid_action_rate", "actor/entropy", "rollout/turns")
WINDOW = 5


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def smoothed(records: list[dict], key: str) -> list[dict]:
    """Records holding the trailing WINDOW-step mean of ``key`` (steps that logged it)."""
    points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    out = []
    for i, (step, _) in enumerate(points):
        window = [v for _, v in points[max(0, i - WINDOW + 1) : i + 1]]
        out.append({"step": step, key: sum(window) / len(window)})
    return out


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def eval_summary(records: list[dict]) -> dict:
    before = next(
        (r["eval/success_rate"] for r in records if r["step"] == 0 and "eval/success_rate" in r), None
    )
    after = next((r["eval/final_success_rate"] for r in records if "eval/final_success_rate" in r), None)
    steps = max((r["step"] for r in records if "rollout/success_rate" in r), default=0)
    return {"before": before, "after": after, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for item in args.runs:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"expected NAME=RUN_DIR, got {item!r}")
        runs[name] = (Path(path), read_records(Path(path)))

    for name, (_, records) in runs.items():
        rows = [r for r in records if "rollout/success_rate" in r]
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", *KEYS])
            writer.writerows([[r["step"], *(r.get(k, "") for k in KEYS)] for r in rows])

    for key, label, file in (
        ("rollout/success_rate", f"rollout success ({WINDOW}-step mean)", "rollout_success.png"),
        ("rollout/invalid_action_rate", f"invalid actions ({WINDOW}-step mean)", "invalid_actions.png"),
        ("actor/entropy", f"entropy ({WINDOW}-step mean)", "entropy.png"),
    ):
        plot_overlay(
            {name: [smoothed(records, key)] for name, (_, records) in runs.items()}, key, label, out / file
        )

    lines = ["| run | RL steps | eval before | eval after | run directory |", "|---|---|---|---|---|"]
    for name, (path, records) in runs.items():
        s = eval_summary(records)
        lines.append(f"| {name} | {s['steps']} | {percent(s['before'])} | {percent(s['after'])} | `{path}` |")
    table = "\n".join(lines) + "\n"
    (out / "runs.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
