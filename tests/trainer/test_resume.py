"""Bit-exact resume as a user meets it: ``spear train`` killed with SIGKILL right after a
checkpoint, then ``spear train --resume``, against an uninterrupted ``spear train``.

Every run is a separate ``spear`` process; the two runs use ``--threads 1``, the resume gives
no ``--threads`` in an environment whose default is 2 threads, so it must take the run's own
count from the checkpoint (with 2 threads the sums of the CPU kernels split differently and
the later steps differ in round-off, the difference issue 13 reported). A small launcher registers
the tests' 'parity' environment and, in the run to be killed, wraps ``save_checkpoint`` so the
process SIGKILLs itself as soon as the checkpoint of step 2 is complete; production code
knows nothing of the test. After the checkpoint, every logged value (except ``time/*``), the
final weights and the last checkpoint's optimizer state must be bitwise identical.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import yaml
from micro import MICRO, micro_config
from safetensors.torch import load_file

from spear.trainer.checkpoint import latest_checkpoint, load_state, saved_threads
from spear.trainer.config import load_config, with_behaviour_it_was_written_with
from spear.trainer.loop import Trainer
from spear.trainer.run import match_threads, resume, train

SUPPORT = Path(__file__).resolve().parents[1] / "support"
KILL_AFTER = 2  # the checkpoint after which the interrupted run dies

LAUNCHER = textwrap.dedent(
    f"""
    import os, signal, sys

    sys.path.insert(0, {str(SUPPORT)!r})
    import parity_env  # noqa: F401  (registers the 'parity' environment)
    import spear.trainer.loop as loop

    kill_after = int(os.environ.get("SPEAR_TEST_KILL_AFTER", "0"))
    save_checkpoint = loop.save_checkpoint

    def save_then_die(run_dir, step, **kwargs):
        path = save_checkpoint(run_dir, step, **kwargs)
        if step == kill_after:  # the checkpoint is complete (LATEST names it): die like kill -9
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    loop.save_checkpoint = save_then_die
    from spear.cli import main

    sys.exit(main(sys.argv[1:]))
    """
)


def spear(launcher, *args, kill_after=None, omp_threads="1"):
    env = {**os.environ, "OMP_NUM_THREADS": omp_threads, "SPEAR_TEST_KILL_AFTER": str(kill_after or 0)}
    return subprocess.run(
        [sys.executable, str(launcher), *args], env=env, capture_output=True, text=True, timeout=300
    )


def rows_after(run_dir, step):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows if r["step"] > step]


def test_sigkill_after_a_checkpoint_then_resume_is_bit_exact(base_model, tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    settings = [
        *(o for o in MICRO if not o.startswith("env.name")),  # --env parity below
        "env.options={}",
        "sft.enabled=false",
        "logging.plots=false",
        "logging.tensorboard=false",
    ]
    command = ["train", "--threads", "1", "--quiet", "--model", str(base_model), "--env", "parity"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    done = spear(launcher, *command, "--run-dir", str(straight), *settings)
    assert done.returncode == 0, done.stderr[-3000:]
    dead = spear(launcher, *command, "--run-dir", str(killed), *settings, kill_after=KILL_AFTER)
    assert dead.returncode == -signal.SIGKILL, dead.stderr[-3000:]
    assert latest_checkpoint(killed).name == f"step-{KILL_AFTER:06d}"
    assert not (killed / "final_model").exists()
    # resumed as the README and the Ctrl-C message say, without --threads, in a shell whose
    # default would be 2 threads: the run's own count (1) comes from the checkpoint
    resumed = spear(launcher, "train", "--quiet", "--resume", str(killed), omp_threads="2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected, got = rows_after(straight, KILL_AFTER), rows_after(killed, KILL_AFTER)
    assert [r["step"] for r in got] == [r["step"] for r in expected] == [3, 4, 4]  # 2 steps + final eval
    assert any(r.get("sil/fired") for r in expected), "the replay update should run after the checkpoint"
    assert got == expected  # every metric exactly, not to a tolerance

    weights = load_file(straight / "final_model" / "model.safetensors")
    again = load_file(killed / "final_model" / "model.safetensors")
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[name], again[name]) for name in weights)
    (_, optimizer), (_, optimizer_again) = (load_state(latest_checkpoint(d)) for d in (straight, killed))
    for state, state_again in zip(
        optimizer["state"].values(), optimizer_again["state"].values(), strict=True
    ):
        assert all(torch.equal(state[k], state_again[k]) for k in state)


def test_resume_computes_with_the_runs_thread_count_and_gives_the_callers_back(
    base_model, tmp_path, monkeypatch, capsys
):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        config = micro_config("steps=2", f"model.path={base_model}", "sft.enabled=false")
        train(config, run_dir=tmp_path, quiet=True)
        assert saved_threads(latest_checkpoint(tmp_path)) == 1
        config_path = tmp_path / "config.yaml"
        config_path.write_text(config_path.read_text().replace("steps: 2", "steps: 3"))
        seen = []
        fit = Trainer.fit
        monkeypatch.setattr(
            Trainer, "fit", lambda self, **kw: seen.append(torch.get_num_threads()) or fit(self, **kw)
        )
        torch.set_num_threads(2)  # e.g. a compare sweep running with --threads 2
        resume(tmp_path, quiet=True)
        assert seen == [1] and torch.get_num_threads() == 2

        match_threads(None, None)  # a checkpoint from before the count was recorded: left alone
        assert torch.get_num_threads() == 2
        match_threads(1, 2)  # the user's --threads wins, with a warning
        assert torch.get_num_threads() == 2
        assert "computed with 1 torch thread and resumes with 2" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_a_run_written_before_newer_config_keys_resumes_with_their_defaults(base_model, tmp_path):
    config = micro_config("steps=2", f"model.path={base_model}", "sft.enabled=false")
    train(config, run_dir=tmp_path, quiet=True)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    saved["steps"] = 3
    for section, key in (("rollout", "prompt_style"), ("sft", "stale_noise"), ("eval", "reuse_start_eval")):
        del saved[section][key]  # as a run of an older spear wrote it
    del saved["model"]["init"]
    del saved["algorithm"]["invalid_penalty_on"]  # its default changed when it was added
    del saved["algorithm"]["tool_reward"]["count"]  # so did these, a level deeper
    del saved["algorithm"]["group_filter"]["penalised"]
    del saved["algorithm"]["group_filter"]["power_of_two_rows"]
    del saved["actor"]["sum_norm_length"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    resumed = with_behaviour_it_was_written_with(saved)
    assert resumed["algorithm"]["invalid_penalty_on"] == "invalid_action"  # as such runs computed
    assert resumed["algorithm"]["tool_reward"]["count"] == "tool_calls"
    assert resumed["algorithm"]["group_filter"]["penalised"] is True
    assert resumed["algorithm"]["group_filter"]["power_of_two_rows"] is False
    assert resumed["actor"]["sum_norm_length"] == "micro_batch"
    resume(tmp_path, quiet=True)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(record["step"] for record in logged) == 3


def test_a_shop_run_written_before_the_reward_option_resumes_paying_the_match_score():
    old = {"env": {"name": "shop", "options": {"max_turns": 10}}, "algorithm": {"tool_reward": {}}}
    assert with_behaviour_it_was_written_with(old)["env"]["options"]["reward"] == "score"
    household = {"env": {"name": "household", "options": {"max_turns": 20}}}
    assert with_behaviour_it_was_written_with(household)["env"]["options"] == {"max_turns": 20}


def test_a_shop_run_written_today_resumes_with_the_default_reward():
    # the option is left at the environment's default, so today's config.yaml lacks it too
    saved = yaml.safe_load(yaml.safe_dump(load_config("grpo", ["env.name=shop"])))
    assert "reward" not in saved["env"]["options"]
    assert "reward" not in with_behaviour_it_was_written_with(saved)["env"]["options"]
