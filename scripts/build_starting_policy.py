"""Build the shipped starting policy of an environment (``spear/models/pretrained/<env>/``).

The one command that regenerates a shipped policy; ``manifest.json`` records the exact
command line used, and every error about a damaged policy quotes it::

    python scripts/build_starting_policy.py --env household --threads 1
    python scripts/build_starting_policy.py --env household sft.episodes=960 sft.epochs=4
    python scripts/build_starting_policy.py --env household --policy novice --threads 1

Overrides (``key.sub=value``) apply over preset ``spear`` and the environment's profile,
as in ``spear train``; the model is always the embedded one, built from scratch and
cold-started. See docs/DESIGN.md, "The shipped starting policy".
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from spear.experiments.starting_policy import build_starting_policy
from spear.models.shipped import KINDS, StartingPolicyError
from spear.trainer.config import ConfigError


def without_out(argv: list[str]) -> list[str]:
    """``argv`` less ``--out DIR``: the folder does not change the files, and the recorded
    command should rebuild the policy where the package looks for it."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="household", help="environment (default: household)")
    parser.add_argument(
        "--policy",
        default="expert",
        choices=KINDS,
        help="expert: the clone of the scripted expert (default); novice: the protocol without the tasks",
    )
    parser.add_argument(
        "--out", help="output folder (default: spear/models/pretrained/<env>[-<policy>][-<layout>])"
    )
    parser.add_argument("--eval-episodes", type=int, default=512, help="held-out episodes (default 512)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: one per core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/build_starting_policy.py", *without_out(argv)])
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        build_starting_policy(
            args.env,
            Path(args.out) if args.out else None,
            args.overrides,
            kind=args.policy,
            eval_episodes=args.eval_episodes,
            command=command,
            quiet=args.quiet,
        )
    except (ConfigError, StartingPolicyError) as exc:
        print(f"build_starting_policy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
