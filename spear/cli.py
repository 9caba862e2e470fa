"""The ``spear`` command line: ``spear train``, ``sft``, ``eval``, ``compare`` and ``inspect``.

Examples::

    spear train                                   # the main job: math from the tool-shy novice, preset spear
    spear train --env household                   # household from its novice (model.shipped=expert: clone)
    spear train --from-scratch                    # build + cold-start the embedded model first
    spear train --preset grpo --steps 100 actor.lr=5e-5 rollout.group_size=8
    spear train --model models/Qwen2.5-1.5B-Instruct --env shop   # any HF model in a local folder
    spear train --env examples.envs.guess_number:GuessNumberEnv    # your own environment class
    spear train --resume runs/spear-household-20261121-101500
    spear sft --env household --out models/household-sft
    spear eval --model runs/.../final_model --env household --episodes 200
    spear compare --presets grpo,spear --seeds 3 --steps 40 --out runs/cmp   # docs/COMPARE.md
    spear inspect runs/spear-household-20261121-101500                      # docs/INSPECT.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from spear import __version__
from spear.rollout.generation import DECODERS
from spear.trainer.config import ConfigError, available_presets, load_config


def _train_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if getattr(args, "from_scratch", False):
        if args.model is not None:
            raise ConfigError("--from-scratch builds the embedded model; it cannot be combined with --model")
        overrides.insert(0, "model.init=scratch")
    if args.env is not None:
        overrides.insert(0, f"env.name={args.env}")
    if args.model is not None:
        overrides.insert(0, f"model.path={args.model}")
    if getattr(args, "steps", None) is not None:
        overrides.insert(0, f"steps={args.steps}")
    if args.seed is not None:
        overrides.insert(0, f"seed={args.seed}")
    return overrides


def _add_threads(parser: argparse.ArgumentParser, *, resumable: bool = False) -> None:
    default = "one per core"
    if resumable:
        default += "; with --resume the run's own count, for a bit-exact resume"
    parser.add_argument(
        "--threads",
        type=int,
        help=f"CPU threads for torch (default: {default}); use 1 per job when jobs share the cores",
    )


def _set_threads(threads: int | None) -> None:
    """Oversubscribed cores slow every job several-fold (docs/BENCHMARKS.md), so let users choose."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


ENV_HELP = (
    "environment name (default: math; built in: household, shop, math, sokoban, textworld, "
    "alfworld, webshop) or your own class as package.module:Class (docs/ENVIRONMENTS.md); "
    "its options: env.options.KEY=VALUE"
)
OVERRIDES_HELP = "config overrides key.sub=value (anywhere on the line, e.g. actor.lr=5e-5 steps=20)"


def _add_common(parser: argparse.ArgumentParser, *, rl: bool) -> None:
    """The options of ``train`` (``rl``) and ``sft``: the config, the start and the output."""
    parser.add_argument(
        "--preset", default="spear", help=f"one of: {', '.join(available_presets())} (default: spear)"
    )
    parser.add_argument("--env", help=ENV_HELP)
    default = (
        "the shipped starting policy of --env, else the embedded model; model.init says which"
        if rl
        else "build the embedded model from scratch"
    )
    parser.add_argument(
        "--model", help=f"local folder of a Hugging Face causal LM, never downloaded (default: {default})"
    )
    if rl:
        parser.add_argument("--steps", type=int, help="RL steps (default: the config's steps)")
    parser.add_argument("--seed", type=int, help="seed of every random choice (default: the config's, 0)")
    parser.add_argument("--config", help="a YAML file merged over the preset (before the overrides)")
    if rl:
        parser.add_argument("--run-dir", help="output directory (default: runs/<preset>-<env>-<time>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_threads(parser, resumable=rl)
    parser.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)


def cmd_train(args: argparse.Namespace) -> int:
    from spear.trainer.run import resume, train

    if args.resume:
        summary = resume(args.resume, quiet=args.quiet, threads=args.threads)
    else:
        config = load_config(args.preset, _train_overrides(args), config_file=args.config)
        summary = train(config, run_dir=args.run_dir, quiet=args.quiet)
    if not summary["is_main"]:
        return 0  # under accelerate launch, the main process reports
    before, after = summary["eval_before"], summary["eval_after"]
    if before is not None and after is not None:
        print(
            f"eval success: {100 * before.success_rate:.1f}% -> {100 * after.success_rate:.1f}% "
            f"({after.episodes} held-out episodes)"
        )
        print(f"  before: {before.summary()}")
        print(f"  after:  {after.summary()}")
        if summary.get("eval_paired") is not None:
            print(f"  paired by episode: {summary['eval_paired'].summary()}")
    print(f"run directory: {summary['run_dir']}")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    from spear.trainer.run import check_start_model, setup_model

    # the cold start is what spear sft is for: it builds from scratch unless given --model
    # (the user's own model.init=shipped, later in the list, still continues SFT on the shipped policy)
    overrides = ["model.init=scratch", *_train_overrides(args), "sft.enabled=true"]
    config = load_config(args.preset, overrides, config_file=args.config)
    check_start_model(config)  # before --out is created
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup_model(config, out, quiet=args.quiet)
    print(f"cold-started model: {out / 'sft_model'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import yaml

    from spear.trainer.run import evaluate_model

    try:
        options = yaml.safe_load(args.env_options) if args.env_options else {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"--env-options {args.env_options!r} is not a YAML mapping ({where})") from None
    if not isinstance(options, dict):
        raise ConfigError("--env-options must be a YAML mapping, e.g. '{num_receptacles: 5}'")
    result = evaluate_model(
        args.model,
        args.env,
        args.episodes,
        env_options=options,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        max_turns=args.max_turns,
        seed=args.seed,
        decode=args.decode,
    )
    print(f"{args.env or 'trained environment'} eval split: {result.summary()}")
    print(f"  tool calls per episode {result.tool_calls:.2f}, turns per episode {result.turns:.2f}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from spear.experiments.compare import compare
    from spear.experiments.report import markdown_table
    from spear.experiments.sweep import DEFAULT_PRESETS, default_sweep_dir, sweep_spec

    spec = sweep_spec(
        args.presets.split(",") if args.presets else DEFAULT_PRESETS,
        args.seeds,
        args.steps,
        env=args.env,
        overrides=args.overrides,
        model=args.model,
        from_scratch=args.from_scratch,
        first_seed=args.first_seed,
    )
    out = Path(args.out) if args.out else default_sweep_dir(spec)
    command = shlex.join(["spear", *args.argv])
    try:
        rows = compare(spec, out, command=command, quiet=args.quiet, jobs=args.jobs)
    except KeyboardInterrupt:
        again = command if args.out else f"{command} --out {shlex.quote(str(out))}"
        print(
            f"\nspear: interrupted: finished runs and the checkpoints of interrupted ones are kept; "
            f"resume with: {again}",
            file=sys.stderr,
        )
        return 130
    print(markdown_table(rows), end="")
    print(f"results: {out / 'results.md'}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from spear.experiments.inspector import write_report

    path = write_report(args.run_dir, args.out)
    print(f"report: {path} (open it in a browser; it needs no server or network)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spear", description="Multi-turn agentic RL with SPEAR.")
    parser.add_argument("--version", action="version", version=f"spear {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="RL from the shipped starting policy (or a cold start) + evaluation")
    _add_common(train, rl=True)
    train.add_argument(
        "--from-scratch",
        action="store_true",
        help="build the embedded model and cold-start it by SFT instead of using the shipped policy",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its newest checkpoint, with its own config "
        "(other options and overrides are ignored except --threads and --quiet)",
    )
    train.set_defaults(func=cmd_train)

    sft = sub.add_parser("sft", help="only the cold start: build/load the model and SFT on demonstrations")
    _add_common(sft, rl=False)
    sft.add_argument("--out", required=True, help="output directory (the model goes to OUT/sft_model)")
    sft.set_defaults(func=cmd_sft)

    ev = sub.add_parser("eval", help="success rate and score on the held-out split")
    ev.add_argument("--model", required=True, help="local folder of the model (e.g. a run's final_model)")
    ev.add_argument(
        "--env",
        help="default: the environment the model was trained on (its spear_run.yaml); "
        "a name or your own class as package.module:Class",
    )
    ev.add_argument("--episodes", type=int, default=100, help="held-out episodes (default: 100)")
    ev.add_argument(
        "--env-options",
        help="YAML mapping of environment options, e.g. '{max_turns: 20}' (default: as in training)",
    )
    ev.add_argument("--temperature", type=float, default=0.4, help="sampling temperature (default: 0.4)")
    ev.add_argument("--max-new-tokens", type=int, help="tokens a turn (default: as in training)")
    ev.add_argument("--max-turns", type=int, help="turns an episode (default: as in training)")
    ev.add_argument("--seed", type=int, default=0, help="sampler seed (default: 0)")
    ev.add_argument(
        "--decode",
        choices=DECODERS,
        help="rollout decoder (default: as in training): the same tokens at another speed; compiled "
        "compiles first and pays on GPUs (docs/ROLLOUT.md)",
    )
    _add_threads(ev)
    ev.set_defaults(func=cmd_eval)

    cmp = sub.add_parser(
        "compare", help="every preset x seed from one shared start; tables and plots (docs/COMPARE.md)"
    )
    cmp.add_argument("--env", help=ENV_HELP)
    cmp.add_argument("--presets", help="comma-separated (default: grpo,drbot,spear,gigpo,gigpo+spear)")
    cmp.add_argument("--seeds", type=int, default=3, help="number of seeds: 0 .. N-1 (default 3)")
    cmp.add_argument(
        "--first-seed", type=int, default=0, help="seeds K .. K+N-1 instead (default 0; for tuning sweeps)"
    )
    cmp.add_argument("--steps", type=int, help="RL steps of every run (default: the config's steps)")
    cmp.add_argument(
        "--model", help="start every run from this local HF model folder (SFT only with sft.enabled=true)"
    )
    cmp.add_argument(
        "--from-scratch",
        action="store_true",
        help="start every run from one shared cold start instead of the shipped starting policy",
    )
    cmp.add_argument("--out", help="sweep directory (default: runs/compare-<env>-<time>); re-run to resume")
    cmp.add_argument("--quiet", action="store_true", help="no progress bars")
    cmp.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at a time, each in its own process (default 1); give each --threads cores / jobs",
    )
    _add_threads(cmp)
    cmp.add_argument("overrides", nargs="*", help=f"{OVERRIDES_HELP}, applied to every run")
    cmp.set_defaults(func=cmd_compare)

    ins = sub.add_parser(
        "inspect", help="a self-contained HTML report of a run: episodes, the SIL buffer, curves"
    )
    ins.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of spear train")
    ins.add_argument("--out", help="the HTML file to write (default: RUN_DIR/inspect.html)")
    ins.add_argument("--threads", type=int, help=argparse.SUPPRESS)  # main() sets threads for every command
    ins.set_defaults(func=cmd_inspect)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with ``key.sub=value`` overrides accepted anywhere after the command
    (argparse's intermixed parsing, per subcommand: it does not support subparsers itself)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if not argv or argv[0] not in commands:
        return parser.parse_args(argv)  # --help, --version, or an error naming the commands
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv  # recorded by spear compare
    from transformers.utils import logging as hf_logging

    from spear.envs.base import EnvProtocolError
    from spear.envs.custom import EnvImportError
    from spear.models.local import ModelPathError
    from spear.models.shipped import StartingPolicyError
    from spear.trainer.failures import EpisodeFailureError
    from spear.trainer.interrupt import SigtermAsInterrupt, TrainingInterrupted

    hf_logging.disable_progress_bar()  # our own bars show progress; HF's save/load bars are noise
    try:
        _set_threads(args.threads)
        with SigtermAsInterrupt():
            return args.func(args)
    except ConfigError as exc:
        print(f"spear: configuration error: {exc}", file=sys.stderr)
        return 2
    except (ModelPathError, EnvImportError, EnvProtocolError) as exc:
        print(f"spear: {exc}", file=sys.stderr)
        return 2
    except StartingPolicyError as exc:
        print(f"spear: {exc} (or start from scratch with --from-scratch)", file=sys.stderr)
        return 2
    except EpisodeFailureError as exc:
        print(f"spear: error: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"\nspear: {exc.message()}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nspear: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
