"""Every command that takes a model path names a bad one in one line (exit code 2) before any
compute, and never asks transformers (which would take the path for a Hub repository id)."""

import pytest

from spear.cli import main

MISSING = "no download is attempted"


@pytest.fixture
def paths(tmp_path, monkeypatch):
    """(a path that does not exist, a folder that holds no model); loaders refuse to run."""

    def refuse(*args, **kwargs):
        raise AssertionError("transformers was asked to load a model")

    import spear.models.embedded as embedded

    monkeypatch.setattr(embedded.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(embedded.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.chdir(tmp_path)  # nothing may be written here either (e.g. runs/)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a model")
    return tmp_path / "nonexistent", empty


def one_line_error(capsys, path, *, exists):
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    expected = "holds no model: it has no config.json" if exists else "does not exist"
    assert lines[0].startswith(f"spear: model path {path} {expected}"), lines[0]
    assert MISSING in lines[0]


COMMANDS = {
    "train --model": lambda p: ["train", "--model", str(p), "--run-dir", "run"],
    "train model.path=": lambda p: ["train", "--run-dir", "run", f"model.path={p}"],
    "sft --model": lambda p: ["sft", "--model", str(p), "--out", "run"],
    "eval --model": lambda p: ["eval", "--model", str(p), "--env", "household"],
    "eval --model (no --env)": lambda p: ["eval", "--model", str(p)],
    "compare --model": lambda p: ["compare", "--model", str(p), "--presets", "grpo", "--out", "run"],
}


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "empty folder"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_names_a_bad_model_path(command, exists, paths, tmp_path, capsys):
    path = paths[exists]
    assert main(COMMANDS[command](path)) == 2
    one_line_error(capsys, path, exists=exists)
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_model_path_from_a_config_file(paths, tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    for exists in (False, True):
        config.write_text(f"model:\n  path: {paths[exists]}\n")
        assert main(["train", "--config", str(config), "--run-dir", "run"]) == 2
        one_line_error(capsys, paths[exists], exists=exists)
        assert main(["sft", "--config", str(config), "--out", "run"]) == 2
        one_line_error(capsys, paths[exists], exists=exists)
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_without_its_model_is_named_on_resume(paths, tmp_path, capsys):
    """--resume reloads the checkpoint's model folder through the same check."""
    from spear.trainer.config import dump, load_config

    run = tmp_path / "old"
    step = run / "checkpoints" / "step-000002"
    (step / "model").mkdir(parents=True)
    (step / "state.pt").write_bytes(b"")
    (run / "checkpoints" / "LATEST").write_text(step.name)
    (run / "config.yaml").write_text(dump(load_config("spear")))
    assert main(["train", "--resume", str(run)]) == 2
    one_line_error(capsys, step / "model", exists=True)
