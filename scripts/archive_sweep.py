"""Keep a ``spear compare`` sweep's finished runs without their weights, e.g. in the repository.

Usage::

    .venv/bin/python scripts/archive_sweep.py /work/sweeps/household-90 sweeps/household-90

A long sweep can be stopped and resumed many times, but it does not outlive the machine it
runs on. The archive holds
``sweep.json`` and each finished run's ``config.yaml``, ``metrics.jsonl``,
``summary.json`` and ``eval_outcomes.json`` (``spear.experiments.sweep.archive_sweep``), plus
the tables and plots of those runs (``results.md``, ``results.csv``, ``runs.csv``,
``plots/``), so ``scripts/build_results.py`` accepts it like the sweep itself. To go on with the sweep
elsewhere, copy the archive to a sweep directory and run the sweep's command with that
``--out``: only the runs not in the archive are trained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spear.experiments.report import write_results
from spear.experiments.sweep import archive_sweep
from spear.trainer.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep", type=Path, help="a spear compare sweep directory")
    parser.add_argument(
        "dest", type=Path, help="the archive folder (replaced if it holds an earlier archive)"
    )
    args = parser.parse_args(argv)
    try:
        names = archive_sweep(args.sweep, args.dest)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_results(args.dest)
    print(f"archived {len(names)} finished runs into {args.dest}: {', '.join(names) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
