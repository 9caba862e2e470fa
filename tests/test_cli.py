"""The command line's own options and its one-line errors; the commands themselves are tested in
tests/trainer and tests/experiments."""

import shutil

import pytest
import torch

from spear import __version__
from spear.cli import main, parse_args
from spear.models.shipped import starting_policy_dir

SHIPPED = starting_policy_dir("household")


def test_threads_sets_torch_threads_before_the_command_runs(capsys):
    before = torch.get_num_threads()
    try:
        # --seeds 0 is refused after the threads are set, so nothing is computed
        assert main(["compare", "--threads", "1", "--seeds", "0"]) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert "--seeds must be a positive number" in capsys.readouterr().err


def test_threads_must_be_positive(capsys):
    assert main(["eval", "--model", "nowhere", "--threads", "0"]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"spear {__version__}"


def test_overrides_are_accepted_anywhere_after_the_command():
    args = parse_args(
        ["train", "--env", "textworld", "env.options.games_dir=g.z8", "--steps", "2", "eval.x=8"]
    )
    assert args.overrides == ["env.options.games_dir=g.z8", "eval.x=8"] and args.steps == 2
    args = parse_args(["compare", "a=1", "--presets", "grpo,spear", "b=2", "--seeds", "2"])
    assert args.overrides == ["a=1", "b=2"] and args.presets == "grpo,spear" and args.seeds == 2


def help_of(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_help_matches_what_each_command_does(capsys):
    sft = help_of("sft", capsys)
    assert "--steps" not in sft and "--run-dir" not in sft and "--resume" not in sft
    for command in ("train", "sft", "compare", "eval"):
        assert "package.module:Class" in help_of(command, capsys), command
    text = help_of("eval", capsys)
    for option in ("--episodes", "--temperature", "--seed", "--max-turns", "--decode"):
        assert option in text and "default" in text.split(option, 2)[-1][:200], option


def test_bad_yaml_in_env_options_is_one_line(capsys):
    assert main(["eval", "--model", str(SHIPPED), "--env-options", "{n: ["]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spear: configuration error: --env-options") and "\n" not in err


def test_a_damaged_weight_file_is_one_line_and_makes_no_run_directory(tmp_path, capsys):
    damaged = tmp_path / "model"
    shutil.copytree(SHIPPED, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    run_dir = tmp_path / "run"
    for argv in (
        ["eval", "--model", str(damaged)],
        ["train", "--model", str(damaged), "--run-dir", str(run_dir)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "model.safetensors is damaged or incomplete" in err and "\n" not in err
    assert not run_dir.exists()


def test_eval_without_run_settings_says_which_it_plays_with(tmp_path, capsys):
    bare = tmp_path / "model"
    shutil.copytree(SHIPPED, bare)
    (bare / "spear_run.yaml").unlink()
    assert main(["eval", "--model", str(bare), "--env", "household", "--episodes", "2"]) == 0
    err = capsys.readouterr().err
    assert "has no spear_run.yaml, so it plays with the household profile's settings" in err
    assert "'max_turns': 20" in err  # the profile's turn cap, not the environment's 50
    assert main(["eval", "--model", str(SHIPPED), "--episodes", "2"]) == 0
    assert "spear_run.yaml" not in capsys.readouterr().err


def test_eval_decodes_as_the_model_was_trained_unless_told(tmp_path, monkeypatch):
    import yaml

    import spear.trainer.run as run_module

    model = tmp_path / "model"
    shutil.copytree(SHIPPED, model)
    settings = yaml.safe_load((model / "spear_run.yaml").read_text())
    settings["rollout"]["decode"] = "static"
    (model / "spear_run.yaml").write_text(yaml.safe_dump(settings))
    decoders = []
    engine = run_module.RolloutEngine

    def recording_engine(model, tokenizer, config, **kwargs):
        decoders.append(config.decode)
        return engine(model, tokenizer, config, **kwargs)

    monkeypatch.setattr(run_module, "RolloutEngine", recording_engine)
    assert main(["eval", "--model", str(model), "--episodes", "1"]) == 0
    assert main(["eval", "--model", str(model), "--episodes", "1", "--decode", "eager"]) == 0
    assert decoders == ["static", "eager"]
