"""Compare presets that ran in separate sweeps of one setting, as if they had run in one.

    .venv/bin/python scripts/cross_sweep.py /work/sweeps/household-novice-90 \\
        /work/sweeps/household-novice-90-no-sil [--presets spear,spear-no-sil] [--plots DIR]

An arm added after a sweep started (issue 36: spear-no-sil beside the headline's spear, the
small-buffer variant beside ``sokoban-novice``'s spear) runs as its own sweep with the same
environment, steps, overrides and start. This pools the finished runs of the sweeps given
and prints the tables ``scripts/build_results.py`` writes for one sweep
(:mod:`spear.experiments.evidence`): gains paired by seed, final evaluations paired by
episode and pooled over seeds, steps to a rollout success both presets reach, and (where a
run has the tool bonus on) turns, tool calls and entropy while it is near full strength. Runs with
the same seed start from the same weights and play the same task seeds, in any sweep of
the same setting, so the pairing holds across sweeps; the script refuses sweeps whose
setting differs, naming what differs. A preset that ran in two of the sweeps is an error
(which runs would count is ambiguous). ``--plots DIR`` also draws the sweep report's overlays
(rollout success, entropy, tool calls; mean over seeds, band min-max) of the pooled presets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spear.experiments.evidence import (
    BONUS_ON,
    bonus_window,
    bonus_window_table,
    gains_table,
    pooled_episodes_table,
    sample_efficiency_table,
)
from spear.experiments.report import OVERLAYS, metric_series, plot_overlay, read_finished_runs, run_summary
from spear.experiments.sweep import read_sweep

SETTING = ("env", "steps", "overrides", "model", "init")  # what a sweep's runs share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep directories of one setting")
    parser.add_argument("--presets", help="comma-separated, in table order (default: every preset, by sweep)")
    parser.add_argument("--plots", type=Path, help="also write the overlay plots of the presets here")
    args = parser.parse_args(argv)

    summaries: list[dict] = []
    outcomes: dict[tuple[str, int], dict] = {}
    records: dict[tuple[str, int], list[dict]] = {}
    first, first_record = read_sweep(args.sweeps[0])
    owner: dict[str, Path] = {}
    for sweep in args.sweeps:
        spec, record = read_sweep(sweep)
        for key in SETTING:
            if getattr(spec, key) != getattr(first, key):
                raise SystemExit(
                    f"{sweep} differs from {args.sweeps[0]} in {key}: "
                    f"{getattr(spec, key)!r} / {getattr(first, key)!r}"
                )
        if record.get("start_policy", {}).get("sha256") != first_record.get("start_policy", {}).get("sha256"):
            raise SystemExit(f"{sweep} starts from other weights than {args.sweeps[0]} (start_policy sha256)")
        for preset in spec.presets:
            if preset in owner:
                raise SystemExit(f"preset {preset} ran in both {owner[preset]} and {sweep}")
            owner[preset] = sweep
        for run in read_finished_runs(spec, sweep):
            summaries.append(run_summary(run))
            outcomes[(run.preset, run.seed)] = run.outcomes
            records[(run.preset, run.seed)] = run.records
    presets = args.presets.split(",") if args.presets else list(owner)
    unknown = [p for p in presets if p not in owner]
    if unknown:
        raise SystemExit(f"--presets names {', '.join(unknown)}, which none of the sweeps ran")
    summaries = [s for s in summaries if s["preset"] in presets]
    print(f"{first.env}, {first.steps} steps, overrides {list(first.overrides) or 'none'}; sweeps:")
    for sweep in args.sweeps:
        print(f"- {sweep}")
    print("\n### Gains over the base method, paired by seed (mean ± std of differences)\n")
    print(gains_table(summaries, presets, first.env))
    print("\n### Final eval success, paired by episode and pooled over seeds\n")
    print(pooled_episodes_table({k: v for k, v in outcomes.items() if k[0] in presets}, presets))
    print("\n### Sample efficiency: steps to a rollout success both presets reach\n")
    records = {k: v for k, v in records.items() if k[0] in presets}
    curves = {k: metric_series(v, "rollout/success_rate") for k, v in records.items()}
    print(sample_efficiency_table(curves, presets))
    if bonus_window(records) is not None:
        print(f"\n### While the tool bonus is on (lambda_tool >= {BONUS_ON}; mean ± std over seeds)\n")
        print(bonus_window_table(records, presets))
    if args.plots:
        series = {p: [v for k, v in sorted(records.items()) if k[0] == p] for p in presets}
        drawn = [f for f, (k, label) in OVERLAYS.items() if plot_overlay(series, k, label, args.plots / f)]
        print(f"\nplots: {', '.join(str(args.plots / f) for f in drawn) or 'none (no finished run)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
