"""`spear train --env package.module:Class`: the documented example end to end, and the errors.

The first test runs exactly the spear commands of the example block in docs/ENVIRONMENTS.md,
with test-size overrides appended (a tiny embedded model, 2 steps).
"""

import json
import re
import shlex
import textwrap
from pathlib import Path

from micro import TINY_MODEL

from spear.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ENVIRONMENTS.md"
MARKER = "<!-- user-env-example:"
TEST_SIZE = [
    *TINY_MODEL,
    "steps=2",
    "sft.episodes=16",
    "sft.epochs=1",
    "rollout.tasks_per_step=2",
    "rollout.group_size=2",
    "eval.every=0",
    "eval.final_episodes=4",
    "checkpoint.every=0",
    "logging.plots=false",
]


def documented_commands() -> list[list[str]]:
    """The ``spear ...`` lines of the bash block that follows the marker in the docs."""
    text = DOC.read_text()
    block = re.search(re.escape(MARKER) + r".*?```bash\n(.*?)```", text, re.S)
    assert block, f"no example block after {MARKER!r} in {DOC}"
    lines = [line for line in block.group(1).splitlines() if line.startswith("spear ")]
    return [shlex.split(line)[1:] for line in lines]


def test_the_documented_example_trains_and_evaluates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the module is imported from the current folder, as documented
    train, evaluate = documented_commands()
    assert train[:2] == ["train", "--env"] and evaluate[0] == "eval"
    run_dir = str(tmp_path / "guess")
    swap = [a.replace("runs/guess", run_dir) for a in train]
    assert main([*swap, *TEST_SIZE, "--quiet"]) == 0
    start = json.loads((tmp_path / "guess" / "start_policy.json").read_text())
    assert start["init"] == "scratch" and start["cold_start_in_run"]  # init auto: no shipped policy
    config = (tmp_path / "guess" / "config.yaml").read_text()
    assert "name: examples.envs.guess_number:GuessNumberEnv" in config and "high: 32" in config
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "guess" / "metrics.jsonl").read_text().splitlines()
    ]
    assert 1 in steps and 2 in steps
    capsys.readouterr()

    swap = [a.replace("runs/guess", run_dir) for a in evaluate]
    assert main([*swap, "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "eval split: success" in out and "3 episodes" in out


def _module(tmp_path: Path, monkeypatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


def _fails(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_missing_module_or_attribute_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = _fails(["train", "--env", "no_such_pkg.games:Env"], capsys)
    assert "cannot import module 'no_such_pkg.games'" in err and "PYTHONPATH" in err
    _module(tmp_path, monkeypatch, "user_env_attr", "X = 1\n")
    err = _fails(["train", "--env", "user_env_attr:Game"], capsys)
    assert "module 'user_env_attr' has no attribute 'Game'" in err
    err = _fails(["train", "--env", "user_env_attr:X"], capsys)
    assert "is a int, not a class" in err
    err = _fails(
        ["eval", "--model", str(ROOT / "spear/models/pretrained/household"), "--env", "nope:Env"], capsys
    )
    assert "cannot import module 'nope'" in err


def test_a_class_that_breaks_the_protocol_is_named(tmp_path, monkeypatch, capsys):
    _module(
        tmp_path,
        monkeypatch,
        "user_env_broken",
        """
        from spear.envs.base import Env

        class NoSolver(Env):
            def reset(self, seed):
                return "", {}

            def step(self, text):
                raise NotImplementedError

        class Duck:
            name, action_format, max_turns = "duck", "react", 3
            admissible_actions = tools = None

            def reset(self, seed):
                return "", {}

            def close(self):
                pass

        class BadFormat(Duck):
            action_format = "json"

            def step(self, text):
                pass

        class NoExpert(BadFormat):
            action_format = "react"

            def __init__(self, split="train", size=3):
                self.instruction = ""
        """,
    )
    err = _fails(["train", "--env", "user_env_broken:NoSolver"], capsys)
    assert "does not implement solver()" in err
    err = _fails(["train", "--env", "user_env_broken:Duck"], capsys)
    assert "breaks the protocol: it has no method step()" in err
    err = _fails(["train", "--env", "user_env_broken:BadFormat"], capsys)
    assert "action_format must be one of react, tool_call, got 'json'" in err
    err = _fails(["train", "--env", "user_env_broken:NoExpert", "env.options.colour=red"], capsys)
    assert "TypeError" in err and "colour" in err
    err = _fails(["train", "--env", "user_env_broken:NoExpert"], capsys)
    assert "has no method solver()" in err and "--model PATH" in err
