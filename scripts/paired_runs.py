"""The final evaluations of the same runs in two sweeps, paired by episode: B - A.

    .venv/bin/python scripts/paired_runs.py sweeps/household-90 sweeps/household-90-ablations

Pairs every run folder name (``<preset>-seed<k>``) that has finished in both sweeps, for
instance the same preset and seed trained by two versions of spear's rules. Each pair's
final evaluations played the same held-out tasks (task seeds 0, 1, ... of the same
environment and options; checked), so the difference is measured episode by episode with
:func:`spear.trainer.evaluate.paired_gain` (exact McNemar test, paired 95% interval); the
last row pools every pair's episodes, which are independent. Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spear.trainer.evaluate import PairedGain, concat_outcomes, load_outcomes, paired_gain, summarize
from spear.trainer.run import saved_config


def final_outcomes(sweep: Path) -> dict[str, tuple[Path, dict[str, list]]]:
    """Run folder name -> (folder, its final evaluation's outcomes), for the finished runs."""
    runs = {}
    for run in sorted((sweep / "runs").glob("*-seed*")):
        after = load_outcomes(run).get("after")
        if (run / "summary.json").is_file() and after:
            runs[run.name] = (run, after)
    return runs


def same_tasks(a: Path, b: Path) -> None:
    """Refuse runs whose final evaluations did not play the same tasks."""
    env_a, env_b = saved_config(a)["env"], saved_config(b)["env"]
    if (env_a["name"], env_a["options"]) != (env_b["name"], env_b["options"]):
        raise SystemExit(f"{a} and {b} evaluate different environments: {env_a} / {env_b}")


def row(name: str, a: dict[str, list], b: dict[str, list]) -> str:
    """One table row: each side's success (as the run summaries count it) and B - A paired."""
    gain: PairedGain = paired_gain(a, b)
    low, high = gain.ci
    rates = f"{100 * summarize(a).success_rate:.1f}% | {100 * summarize(b).success_rate:.1f}%"
    return (
        f"| {name} | {rates} | {100 * gain.gain:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}) "
        f"| {gain.won_before_only} | {gain.won_after_only} | {gain.p_value:.2g} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep_a", type=Path)
    parser.add_argument("sweep_b", type=Path)
    args = parser.parse_args(argv)
    runs_a, runs_b = final_outcomes(args.sweep_a), final_outcomes(args.sweep_b)
    names = [name for name in runs_a if name in runs_b]
    if not names:
        raise SystemExit(f"no run has finished in both {args.sweep_a} and {args.sweep_b}")
    print(
        f"| run | final, {args.sweep_a.name} (A) | final, {args.sweep_b.name} (B) | B - A, points (95% CI) "
        "| episodes won only in A | only in B | McNemar p |"
    )
    print("|---" * 7 + "|")
    for name in names:
        (run_a, a), (run_b, b) = runs_a[name], runs_b[name]
        same_tasks(run_a, run_b)
        print(row(name, a, b))
    if len(names) > 1:
        pooled_a = concat_outcomes([runs_a[name][1] for name in names])
        pooled_b = concat_outcomes([runs_b[name][1] for name in names])
        print(row(f"{len(names)} runs pooled", pooled_a, pooled_b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
