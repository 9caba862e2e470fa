"""Redraw a finished run's plots from its ``metrics.jsonl``, and optionally one summary figure.

Usage::

    .venv/bin/python scripts/plot_run.py RUN_DIR [--summary OUT.png] [--title TEXT]

Writes ``RUN_DIR/plots/*.png`` as ``spear train`` does (runs made before the final
evaluation was plotted get it too) and, with ``--summary``, success, tool calls and entropy
side by side in one PNG (``docs/img/main-job.png`` in the README is made this way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spear.experiments.sweep import read_metrics
from spear.trainer.logger import write_plots, write_summary_plot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--summary", type=Path, help="also write the three-panel figure here")
    parser.add_argument("--title", default="", help="the summary figure's title")
    args = parser.parse_args(argv)
    history = read_metrics(args.run_dir)
    if not history:
        print(f"plot_run: no metrics in {args.run_dir / 'metrics.jsonl'}", file=sys.stderr)
        return 2
    for path in write_plots(history, args.run_dir / "plots"):
        print(path)
    if args.summary:
        print(write_summary_plot(history, args.summary, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
