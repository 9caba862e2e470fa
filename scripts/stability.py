"""Issue 36 item 5: which runs break as the learning rate grows (docs/results_notes.md).

    .venv/bin/python scripts/stability.py sweeps/tune-novice-lr sweeps/stability-lr5e-4 ...

Takes run folders, or folders holding them under ``runs/`` (a sweep, or the lr tuning's
``spear train`` runs), and prints :func:`spear.experiments.evidence.stability_table` for the
finished ones: each run's preset, ``actor.lr`` and seed from its saved config, its held-out
success before and after (paired by episode), its token entropy at the start and the end,
and whether it breaks by the rule set down before the runs (success significantly below the
start, or entropy above twice or below half its start); then, at each lr, spear against each
other preset over the seeds both ran, paired by episode and pooled over those seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spear.experiments.evidence import stability_gaps_table, stability_table
from spear.experiments.report import summarise_run
from spear.experiments.sweep import read_metrics
from spear.trainer.evaluate import load_outcomes
from spear.trainer.run import saved_config


def run_folders(paths: list[Path]) -> list[Path]:
    """The run folders named, or found under ``<path>/runs``."""
    runs = []
    for path in paths:
        if (path / "metrics.jsonl").is_file():
            runs.append(path)
        elif (path / "runs").is_dir():
            runs += sorted(p for p in (path / "runs").iterdir() if (p / "metrics.jsonl").is_file())
        else:
            raise SystemExit(f"{path} is neither a run folder (metrics.jsonl) nor holds runs/")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or folders with runs/")
    args = parser.parse_args(argv)
    summaries, outcomes = [], {}
    for run in run_folders(args.paths):
        run_outcomes = load_outcomes(run)
        summary = summarise_run(read_metrics(run), run_outcomes)
        if summary["final_success"] is None:
            continue  # not finished
        config = saved_config(run)
        env = {"name": config["env"]["name"], "options": config["env"]["options"]}
        if summaries and env != summaries[0]["env"]:  # pairs must play the same held-out tasks
            raise SystemExit(f"{run} evaluates {env}, {summaries[0]['run_dir']} {summaries[0]['env']}")
        summaries.append(
            {
                **summary,
                "run_dir": str(run),
                "env": env,
                "preset": config["preset"],
                "lr": float(config["actor"]["lr"]),
                "seed": int(config["seed"]),
            }
        )
        key = tuple(summaries[-1][k] for k in ("preset", "lr", "seed"))
        if key in outcomes:
            raise SystemExit(f"two runs of {key[0]} at lr {key[1]} with seed {key[2]}: {run} and another")
        outcomes[key] = run_outcomes.get("after")
    if not summaries:
        raise SystemExit("no finished run among the folders given")
    print(stability_table(summaries))
    print()
    print(stability_gaps_table(summaries, outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
