"""spear compare on a micro sweep (2 presets x 2 seeds x 3 steps on 'parity', conftest.py):
the shared cold start, resume after Ctrl-C and after a deleted run, the tables against the
runs' own metrics.jsonl, plots, spec checks, and docs/RESULTS.md generation."""

import csv
import importlib.util
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from micro import TINY_MODEL

import spear.trainer.run as recipes
from spear.cli import main
from spear.envs import make
from spear.experiments.compare import cold_start_config, compare, plan_runs, start_model
from spear.experiments.sweep import read_sweep, sweep_spec
from spear.models.local import ModelPathError
from spear.trainer.checkpoint import latest_checkpoint
from spear.trainer.config import ConfigError, load_config
from spear.trainer.loop import Trainer

STEPS = 3
MICRO = [
    "env.options={}",
    "rollout.tasks_per_step=2",
    "rollout.group_size=2",
    "rollout.max_new_tokens=16",
    "rollout.history_length=1",
    "actor.mini_batch_size=16",
    "actor.micro_batch_size=8",
    "eval.every=1",
    "eval.episodes=2",
    "eval.final_episodes=2",
    "checkpoint.every=1",
    "sil.buffer.trigger=min_samples",
    "sil.buffer.min_samples=2",
    "sil.buffer.capacity=8",
    "sft.episodes=4",
    "sft.epochs=1",
    "algorithm.filters=[]",  # Dr.BoT's overlong filter would mask every 16-token response
    "logging.tensorboard=false",
    "logging.plots=false",
    *TINY_MODEL,
]
PRESETS = ("grpo", "spear")
RUNS = ("grpo-seed0", "spear-seed0", "grpo-seed1", "spear-seed1")  # seed-major order


def cli_args(out, *, steps=STEPS, presets="grpo,spear"):
    sweep = ["--env", "parity", "--presets", presets, "--seeds", "2", "--steps", str(steps)]
    return ["compare", *sweep, "--out", str(out), "--quiet", *MICRO]


class Calls:
    """Records the runs compare trains or resumes and its cold starts (the real recipes run)."""

    def __init__(self, monkeypatch):
        self.log = []
        for name in ("train", "resume", "setup_model"):
            original = getattr(recipes, name)
            monkeypatch.setattr(recipes, name, self._spy(name, original))

    def _spy(self, name, original):
        # train(config, run_dir=...), resume(run_dir), setup_model(config, run_dir)
        where = {
            "train": lambda a, k: k["run_dir"],
            "resume": lambda a, k: a[0],
            "setup_model": lambda a, k: a[1],
        }

        def spy(*args, **kwargs):
            target = Path(where[name](args, kwargs)).name
            if name != "setup_model" or target == ".cold_start.partial":  # not train's own call
                self.log.append((name, target))
            return original(*args, **kwargs)

        return spy


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A model this small gains nothing from two threads, and on a busy shared CPU their
    synchronisation makes each forward pass 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep interrupted by Ctrl-C in its third run, then completed by the same command."""
    out = tmp_path_factory.mktemp("sweep") / "cmp"
    original_step = Trainer.train_step

    def ctrl_c(self, step):
        if self.run_dir.name == "grpo-seed1" and step == 2:
            raise KeyboardInterrupt
        return original_step(self, step)

    with pytest.MonkeyPatch.context() as mp:
        first = Calls(mp)
        mp.setattr(Trainer, "train_step", ctrl_c)
        assert main(cli_args(out)) == 130
    with pytest.MonkeyPatch.context() as mp:
        second = Calls(mp)
        assert main(cli_args(out)) == 0
    return out, first.log, second.log


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_an_interrupted_sweep_resumes_without_redoing_finished_runs(sweep):
    out, first, second = sweep
    assert first == [
        ("setup_model", ".cold_start.partial"),
        ("train", "grpo-seed0"),
        ("train", "spear-seed0"),
        ("train", "grpo-seed1"),
    ]
    # the cold start and the two finished runs are kept; the interrupted run continues
    # from its checkpoint, the never-started one starts
    assert second == [("resume", "grpo-seed1"), ("train", "spear-seed1")]
    steps = [r["step"] for r in metrics(out / "runs" / "grpo-seed1") if "rollout/success_rate" in r]
    assert steps == [1, 2, 3]


def test_every_run_starts_from_the_shared_cold_start(sweep):
    out = sweep[0]
    cold = (out / "cold_start" / "sft_model").resolve()
    assert (cold / "config.json").is_file()
    before = {}
    for name in RUNS:
        config = yaml.safe_load((out / "runs" / name / "config.yaml").read_text())
        assert config["model"]["path"] == str(cold) and config["sft"]["enabled"] is False
        assert config["seed"] == int(name[-1]) and config["steps"] == STEPS
        before[name] = next(r for r in metrics(out / "runs" / name) if r["step"] == 0)["eval/success_rate"]
    # same weights and same eval sampling seed: the pre-RL evaluation agrees across presets
    assert before["grpo-seed0"] == before["spear-seed0"]
    assert before["grpo-seed1"] == before["spear-seed1"]


def by_hand(run_dir):
    """The columns of docs/COMPARE.md for a 3-step run, straight from metrics.jsonl."""
    rows = metrics(run_dir)
    train = {r["step"]: r for r in rows if "rollout/success_rate" in r}
    assert sorted(train) == [1, 2, 3]
    evals = {r["step"]: r["eval/success_rate"] for r in rows if "eval/success_rate" in r}
    final = [r["eval/final_success_rate"] for r in rows if "eval/final_success_rate" in r][-1]
    e0, e1, e2, e3 = evals[0], evals[1], evals[2], final  # eval.every=1: steps 1 and 2
    return {
        "eval_before": e0,
        "final_success": final,
        "success_auc": sum(train[s]["rollout/success_rate"] for s in (1, 2, 3)) / 3,
        "eval_auc": ((e0 + e1) / 2 + (e1 + e2) / 2 + (e2 + e3) / 2) / 3,
        "tool_calls": sum(train[s]["rollout/tool_calls"] for s in (1, 2, 3)) / 3,
        # 3 steps: windows of max(1, 3 // 10) = 1 step; the middle one is step (3 - 1) // 2 + 1
        "entropy_start": train[1]["actor/entropy"],
        "entropy_middle": train[2]["actor/entropy"],
        "entropy_end": train[3]["actor/entropy"],
        "time_per_step": sum(train[s]["time/step"] for s in (1, 2, 3)) / 3,
    }


def test_tables_hold_the_mean_and_sample_std_of_the_runs_metrics(sweep):
    out = sweep[0]
    with open(out / "results.csv") as f:
        table = {row["preset"]: row for row in csv.DictReader(f)}
    with open(out / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert [(r["preset"], r["seed"]) for r in runs] == [(n.split("-")[0], n[-1]) for n in RUNS]
    report = (out / "results.md").read_text()
    for preset in PRESETS:
        seeds = [by_hand(out / "runs" / f"{preset}-seed{s}") for s in (0, 1)]
        assert table[preset]["seeds"] == "2"
        for key in seeds[0]:
            values = [s[key] for s in seeds]
            assert float(table[preset][f"{key}_mean"]) == pytest.approx(statistics.mean(values))
            assert float(table[preset][f"{key}_std"]) == pytest.approx(statistics.stdev(values))
        for run, hand in zip([r for r in runs if r["preset"] == preset], seeds, strict=True):
            assert float(run["success_auc"]) == pytest.approx(hand["success_auc"])
        final = [s["final_success"] for s in seeds]
        cell = f"{100 * statistics.mean(final):.1f} ± {100 * statistics.stdev(final):.1f}"
        assert f"| {preset} | 2 | " in report and cell in report


def test_report_records_the_command_and_links_the_plots(sweep):
    out = sweep[0]
    report = (out / "results.md").read_text()
    command = shlex.join(["spear", *cli_args(out)])
    assert command in report
    _, record = read_sweep(out)
    assert [i["command"] for i in record["invocations"]] == [command]  # recorded once
    for name in ("success.png", "entropy.png", "tool_calls.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{name})" in report


def test_deleting_a_finished_run_redoes_only_that_run(sweep, tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    shutil.copytree(sweep[0], out)
    shutil.rmtree(out / "runs" / "spear-seed0")
    calls = Calls(monkeypatch)
    # the spec check compares specs, not command strings: --out differs from the recorded one
    assert main(cli_args(out)) == 0
    assert calls.log == [("train", "spear-seed0")]
    assert (out / "runs" / "spear-seed0" / "summary.json").is_file()


def test_a_run_that_today_s_defaults_would_train_by_other_rules_is_refused(
    sweep, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "cmp"
    shutil.copytree(sweep[0], out)
    shutil.rmtree(out / "runs" / "spear-seed1")  # to be trained now...
    saved = yaml.safe_load((out / "runs" / "spear-seed0" / "config.yaml").read_text())
    saved["actor"]["clip_high"] = 0.2  # ...while its sibling was trained by an older default
    (out / "runs" / "spear-seed0" / "config.yaml").write_text(yaml.safe_dump(saved))
    calls = Calls(monkeypatch)
    assert main(cli_args(out)) == 2
    err = capsys.readouterr().err
    assert "spear-seed1 (actor.clip_high: 0.2 -> 0.28; against spear-seed0)" in err
    assert "defaults changed" in err and calls.log == []


def test_a_different_spec_is_refused_before_any_compute(sweep, monkeypatch, capsys):
    out = sweep[0]
    calls = Calls(monkeypatch)
    assert main(cli_args(out, steps=STEPS + 1)) == 2
    err = capsys.readouterr().err
    assert "different spec" in err and f"steps: sweep has {STEPS}, now {STEPS + 1}" in err
    assert main(cli_args(out, presets="spear,grpo")) == 2  # order matters: it is the table's order
    assert calls.log == []


@pytest.mark.parametrize(
    ("presets", "overrides", "message"),
    [
        (("grpo", "nope"), [], "unknown preset 'nope'"),
        (("grpo",), ["actor.nope=1"], "unknown config key 'actor.nope'"),
        (("grpo",), ["seed=3"], "use --seeds"),
        (("grpo", "grpo"), [], "more than once"),
        (("grpo",), ["env.options={bogus: 1}"], "env.options"),
    ],
)
def test_config_errors_fail_before_any_compute(tmp_path, monkeypatch, presets, overrides, message):
    calls = Calls(monkeypatch)
    with pytest.raises(ConfigError, match=message):
        spec = sweep_spec(presets, 2, 3, env="parity", overrides=[*MICRO, *overrides])
        compare(spec, tmp_path / "cmp", command="test", quiet=True)
    assert calls.log == [] and not (tmp_path / "cmp").exists()


def test_an_existing_folder_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    spec = sweep_spec(("grpo",), 1, 1, env="parity", overrides=MICRO)
    with pytest.raises(ConfigError, match="not a sweep directory"):
        compare(spec, tmp_path, command="test", quiet=True)


def test_a_given_model_is_the_shared_start_and_is_cold_started_only_on_request(sweep, tmp_path):
    given = str(sweep[0] / "cold_start" / "sft_model")
    as_given = sweep_spec(("grpo",), 1, 2, env="parity", overrides=MICRO, model=given)
    assert start_model(as_given, tmp_path, cold_start_config(as_given)) == Path(given)
    tuned = sweep_spec(("grpo",), 1, 2, env="parity", overrides=[*MICRO, "sft.enabled=true"], model=given)
    start = start_model(tuned, tmp_path, cold_start_config(tuned))
    assert start == tmp_path.resolve() / "cold_start" / "sft_model"
    assert plan_runs(tuned, tmp_path, start)[0].config["model"]["path"] == str(start)

    compare(as_given, tmp_path / "cmp", command="test", quiet=True)
    config = yaml.safe_load((tmp_path / "cmp" / "runs" / "grpo-seed0" / "config.yaml").read_text())
    assert config["model"]["path"] == given and not (tmp_path / "cmp" / "cold_start").exists()
    assert "`" + given + "` as given (no SFT)" in (tmp_path / "cmp" / "results.md").read_text()
    with pytest.raises(ModelPathError, match="does not exist"):
        sweep_spec(("grpo",), 1, env="parity", overrides=MICRO, model=str(tmp_path / "nothing"))


def test_steps_and_env_default_to_the_config():
    spec = sweep_spec(("grpo",), 1)
    assert (spec.env, spec.steps) == (load_config("grpo")["env"]["name"], load_config("grpo")["steps"])
    assert spec.seeds == (0,)


def load_script(name):
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_results_writes_a_deterministic_results_page(sweep, tmp_path):
    out = sweep[0]
    build_results = load_script("build_results")
    page = tmp_path / "docs" / "RESULTS.md"
    assert build_results.main([str(out), "--out", str(page)]) == 0
    text = page.read_text()
    assets = tmp_path / "docs" / "results" / "cmp"
    assert "## cmp" in text and read_sweep(out)[1]["invocations"][0]["command"] in text
    assert "CPUs" in text and "torch" in text and "device" in text
    assert (out / "results.md").read_text().split("| preset |")[1].split("\n\n")[0] in text  # same table
    for name in ("success.png", "entropy.png", "tool_calls.png"):
        assert (assets / name).read_bytes() == (out / "plots" / name).read_bytes()
        assert f"(results/cmp/{name})" in text
    assert "(results/cmp/runs.csv)" in text and (assets / "runs.csv").is_file()
    assert "paired by episode and pooled over seeds" in text and "| spear - grpo | 2 | 4 |" in text
    # 3 steps: lambda_tool is 0.75 at step 1, never near full strength, so no bonus section
    assert "while the tool bonus is on" not in text
    (tmp_path / "docs" / "results" / "old-sweep").mkdir()
    build_results.main([str(out), "--out", str(page)])
    assert page.read_text() == text  # regenerated identically, and nothing stale is left
    assert sorted(p.name for p in (tmp_path / "docs" / "results").iterdir()) == ["cmp"]


def test_build_results_carries_over_a_kept_section_when_the_sweep_is_gone(sweep, tmp_path):
    """docs/results/<name>/ keeps the generated section: passed instead of the sweep directory
    (deleted with the machine it ran on), it reproduces the same section and files."""
    build_results = load_script("build_results")
    page = tmp_path / "docs" / "RESULTS.md"
    build_results.main([str(sweep[0]), "--out", str(page)])
    kept = tmp_path / "docs" / "results" / "cmp"
    section = (kept / "section.md").read_text()
    assert section.startswith("## cmp") and section in page.read_text()
    files = {f.name: f.read_bytes() for f in kept.iterdir()}
    build_results.main([str(kept), "--out", str(page)])  # read before docs/results is replaced
    body = page.read_text().split("## cmp", 1)[1]
    assert body == section.split("## cmp", 1)[1]
    assert {f.name: f.read_bytes() for f in kept.iterdir()} == files


def test_runs_in_parallel_jobs_give_the_same_runs_as_one_at_a_time(tmp_path, capfd):
    """--jobs 2 trains each run in its own (spawned) process with the same thread count: the
    runs, and so every table, are those of a sequential sweep. A spawned process starts
    empty, so the environment is named by import path (tests/trainer is on sys.path), and
    the CLI's hidden HF save bars must be hidden there too."""

    def sweep(out, jobs):
        args = ["compare", "--env", "parity_env:ParityEnv", "--presets", "grpo,spear", "--seeds", "1"]
        assert main([*args, "--steps", "2", "--out", str(out), "--quiet", "--jobs", str(jobs), *MICRO]) == 0
        return {
            run: [
                {k: v for k, v in row.items() if not k.startswith("time/")}
                for row in metrics(out / "runs" / run)
            ]
            for run in ("grpo-seed0", "spear-seed0")
        }

    parallel = sweep(tmp_path / "parallel", 2)
    assert "Writing model shards" not in capfd.readouterr().err
    assert parallel == sweep(tmp_path / "sequential", 1)
    with pytest.raises(ConfigError, match="--jobs"):
        compare(sweep_spec(["grpo"], 1, 1, env="parity"), tmp_path / "bad", command="test", jobs=0)


def test_an_archive_keeps_the_finished_runs_without_weights_and_resumes(sweep, tmp_path, monkeypatch):
    """scripts/archive_sweep.py keeps what the tables need (no model, no checkpoints), so a
    long sweep's finished part can be committed: its tables equal the sweep's, build_results
    accepts it, and copied back as a sweep directory only the runs it lacks are trained."""
    out = sweep[0]
    archive_sweep = load_script("archive_sweep")
    archive = tmp_path / "archive"
    assert archive_sweep.main([str(out), str(archive)]) == 0
    run_files = sorted(p.relative_to(archive / "runs").as_posix() for p in (archive / "runs").rglob("*"))
    kept = ("config.yaml", "eval_outcomes.json", "metrics.jsonl", "summary.json")
    assert run_files == sorted([*RUNS, *(f"{run}/{name}" for run in RUNS for name in kept)])
    assert (archive / "cold_start").is_dir()  # the micro sweep built its shared start
    for name in ("results.csv", "runs.csv"):  # runs.csv holds the paired gains from eval_outcomes.json
        assert (archive / name).read_text() == (out / name).read_text()

    page = tmp_path / "docs" / "RESULTS.md"
    assert load_script("build_results").main([str(archive), "--out", str(page)]) == 0
    assert (out / "results.md").read_text().split("| preset |")[1].split("\n\n")[0] in page.read_text()

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert archive_sweep.main([str(out), str(tmp_path / "mine")]) == 2  # not an archive: refused
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    assert archive_sweep.main([str(out), str(archive)]) == 0  # an earlier archive is replaced

    restored = tmp_path / "restored"
    shutil.copytree(archive, restored)
    shutil.rmtree(restored / "runs" / "spear-seed1")
    calls = Calls(monkeypatch)
    assert main(cli_args(restored)) == 0
    assert calls.log == [("train", "spear-seed1")]
    assert (restored / "results.csv").read_text().splitlines()[0] == (
        out / "results.csv"
    ).read_text().splitlines()[0]


@pytest.mark.parametrize(
    "archive", sorted(p.parent for p in (Path(__file__).parents[2] / "sweeps").glob("*/sweep.json")), ids=str
)
def test_the_committed_sweep_archives_hold_every_run_their_tables_list(archive):
    """What sweeps/README.md promises: a checkout holds each archived run's files, so a sweep
    is continued elsewhere and its tables rebuilt (a .gitignore rule once kept every runs/
    folder out of the repository and left only the tables)."""
    with open(archive / "runs.csv", newline="") as f:
        listed = [row["run_dir"] for row in csv.DictReader(f)]
    assert listed
    for run in listed:
        for name in ("config.yaml", "metrics.jsonl", "summary.json", "eval_outcomes.json"):
            assert (archive / run / name).is_file(), f"{archive.name}/{run}/{name} is missing"


def test_eval_outcomes_of_an_older_run_are_replayed_and_checked(sweep, tmp_path):
    """scripts/eval_outcomes.py gives a run written before per-episode outcomes were kept
    exactly the file the run would have written, and refuses when the replay disagrees with
    what the run logged."""
    run = tmp_path / "spear-seed0"
    shutil.copytree(sweep[0] / "runs" / "spear-seed0", run)
    written = (run / "eval_outcomes.json").read_text()
    (run / "eval_outcomes.json").unlink()
    eval_outcomes = load_script("eval_outcomes")
    assert eval_outcomes.main([str(run)]) == 0
    assert (run / "eval_outcomes.json").read_text() == written
    assert eval_outcomes.add_outcomes(run) == "has eval_outcomes.json already"

    (run / "eval_outcomes.json").unlink()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if "eval/final_success_rate" in row:
            row["eval/final_success_rate"] += 0.5  # a run the replay cannot reproduce
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="nothing written"):
        eval_outcomes.add_outcomes(run)
    assert not (run / "eval_outcomes.json").exists()


def test_by_task_type_pools_each_presets_eval_outcomes_by_the_episodes_task_type(tmp_path, capsys):
    options = {"num_receptacles": 4, "num_distractors": 1, "max_turns": 3}
    env = make("household", split="eval", **options)
    types = [env.reset(i)[1]["task_type"] for i in range(8)]
    first = types[0]
    for preset, seed in (("grpo", 0), ("grpo", 1), ("spear", 0)):
        run = tmp_path / "runs" / f"{preset}-seed{seed}"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"env": {"name": "household", "options": options}}))
        # before: nothing won; after: grpo seed 0 wins the episodes of the first one's type
        # only, spear wins episode 0, whose environment failed (left out, as in the summaries)
        after = [preset == "grpo" and seed == 0 and t == first for t in types]
        failed = [preset == "spear" and i == 0 for i in range(8)]
        after[0] = after[0] or failed[0]
        outcomes = {
            "before": {"won": [False] * 8, "failed": [False] * 8},
            "after": {"won": after, "failed": failed},
        }
        (run / "eval_outcomes.json").write_text(json.dumps(outcomes))
    assert load_script("by_task_type").main([str(tmp_path), "--presets", "grpo,spear"]) == 0
    lines = capsys.readouterr().out.splitlines()
    columns = sorted(set(types))
    assert lines[0] == "| preset | " + " | ".join(f"{t} ({types.count(t)})" for t in columns) + " |"
    grpo = dict(zip(columns, lines[2].strip("| ").split(" | ")[1:], strict=True))
    assert grpo[first] == "0 -> 50"  # one of two grpo seeds won them all
    assert all(grpo[t] == "0 -> 0" for t in columns if t != first)
    spear = ["n/a" if t == first and types.count(t) == 1 else "0 -> 0" for t in columns]
    assert lines[3] == "| spear | " + " | ".join(spear) + " |"  # its failed win is not counted


def test_paired_runs_pairs_the_same_run_of_two_sweeps_episode_by_episode(tmp_path, capsys):
    env = {"name": "household", "options": {"max_turns": 3}}
    finals = {
        ("A", "spear-seed0"): [1, 1, 0, 0],
        ("B", "spear-seed0"): [1, 0, 1, 1],  # one episode won only in A, two only in B
        ("A", "spear-seed1"): [0, 0, 0, 0],
        ("B", "spear-seed1"): [1, 0, 0, 0],
        ("A", "grpo-seed0"): [1, 1, 1, 1],  # finished in A only: not paired
    }
    for (sweep, name), won in finals.items():
        run = tmp_path / sweep / "runs" / name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"env": env}))
        (run / "summary.json").write_text("{}")
        zeros = [0] * 4
        outcomes = {
            "after": {"won": won, "failed": [False] * 4, "score": won, "turns": zeros, "tool_calls": zeros}
        }
        (run / "eval_outcomes.json").write_text(json.dumps(outcomes))
    paired_runs = load_script("paired_runs")
    assert paired_runs.main([str(tmp_path / "A"), str(tmp_path / "B")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| spear-seed0",
        "| spear-seed1",
        "| 2 runs pooled",
    ]
    # (2 - 1) / 4 episodes, McNemar on 1 vs 2 discordant pairs: p = 1
    assert lines[2].startswith("| spear-seed0 | 50.0% | 75.0% | +25.0 (") and lines[2].endswith(
        "| 1 | 2 | 1 |"
    )
    # pooled: 3 - 1 discordant of 8 episodes, p = 2 x (1 + 4) / 16
    assert lines[4].startswith("| 2 runs pooled | 25.0% | 50.0% | +25.0 (") and lines[4].endswith(
        "| 1 | 3 | 0.62 |"
    )
    other = tmp_path / "B" / "runs" / "spear-seed1" / "config.yaml"
    other.write_text(yaml.safe_dump({"env": {**env, "options": {"max_turns": 5}}}))
    with pytest.raises(SystemExit, match="different environments"):
        paired_runs.main([str(tmp_path / "A"), str(tmp_path / "B")])


PARALLEL = ["compare", "--env", "parity_env:ParityEnv", "--presets", "grpo,spear,drbot", "--seeds", "1"]
PARALLEL += ["--steps", "4", "--quiet", "--threads", "1", *MICRO]
PARALLEL_RUNS = ("grpo-seed0", "spear-seed0", "drbot-seed0")


@pytest.fixture(scope="module")
def straight_sweep(tmp_path_factory):
    """The parallel-stop tests' sweep, uninterrupted and in one process."""
    out = tmp_path_factory.mktemp("straight")
    assert main([*PARALLEL, "--jobs", "1", "--out", str(out)]) == 0
    return out


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    "stop", ["ctrl-c to the group", "SIGTERM to the parent", "SIGTERM then SIGKILL to the parent"]
)
def test_a_stopped_parallel_sweep_keeps_its_steps_and_the_same_command_finishes_it_bit_exact(
    tmp_path, straight_sweep, stop
):
    """However `spear compare --jobs 2` is stopped, its two running runs stop at a step
    boundary with the checkpoint of their last completed step (none before step 1), the
    third, queued, does not start, and no worker trains on. A terminal's Ctrl-C reaches the
    whole process group; `kill PID` reaches the parent alone, which passes it on and exits
    130 as on Ctrl-C; a SIGKILL after it gives the parent no say, and its orphaned workers
    stop themselves. The same command then finishes every run with the metrics of an
    uninterrupted sweep."""
    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "spear.cli", *PARALLEL, "--jobs", "2", "--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "support"), *sys.path]),
    }
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    logs = [out / "runs" / run / "metrics.jsonl" for run in PARALLEL_RUNS[:2]]
    deadline = time.monotonic() + 240
    # stop when the first run has logged step 2 of 4: no run has ended, so the third is queued
    while not any(log.is_file() and '"step": 2' in log.read_text() for log in logs):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.05)
    if stop == "ctrl-c to the group":
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)
    if stop == "SIGTERM then SIGKILL to the parent":
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    _, err = process.communicate(timeout=240)
    deadline = time.monotonic() + 240
    while group_alive(process.pid):  # the workers, which share the parent's process group
        assert time.monotonic() < deadline, "a sweep worker trains on after its sweep was stopped"
        time.sleep(0.1)
    if stop == "SIGTERM then SIGKILL to the parent":
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, err[-3000:]
        assert "Traceback" not in err
        assert "resume with: spear compare" in err.splitlines()[-1]
    assert not (out / "runs" / PARALLEL_RUNS[2]).exists(), "the queued run started"
    stopped = [run for run in PARALLEL_RUNS[:2] if (out / "runs" / run / "metrics.jsonl").is_file()]
    assert stopped and not any((out / "runs" / run / "summary.json").is_file() for run in stopped)
    for run in stopped:  # the last logged step is the checkpointed one: nothing half-done
        rows, checkpoint = metrics(out / "runs" / run), latest_checkpoint(out / "runs" / run)
        last = rows[-1]["step"] if rows else 0
        assert (checkpoint.name if checkpoint else None) == (f"step-{last:06d}" if last else None)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    for run in PARALLEL_RUNS:
        got, expected = metrics(out / "runs" / run), metrics(straight_sweep / "runs" / run)
        strip = [{k: v for k, v in row.items() if not k.startswith("time/")} for row in got]
        assert strip == [{k: v for k, v in row.items() if not k.startswith("time/")} for row in expected]


IDLE_POOL = """
import multiprocessing, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from spear.experiments.compare import _start_worker


def slow_pid(_):
    time.sleep(0.5)
    return os.getpid()


if __name__ == "__main__":
    # the parent carries on (a handler, not SIG_IGN, which a spawned child would inherit)
    signal.signal(signal.SIGINT, lambda *_: None)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn, initializer=_start_worker,
                             initargs=(1, False, spawn.Event(), spawn.Event())) as pool:
        workers = set()
        while len(workers) < 2:  # both workers started, ran a task, and now wait idle
            workers |= set(pool.map(slow_pid, range(2)))
        print("ready", flush=True)
        time.sleep(3)  # the test sends Ctrl-C to the process group now
        print(sum(pool.map(abs, [-1, -2, -3])), flush=True)
"""


def test_an_idle_sweep_worker_survives_ctrl_c(tmp_path):
    """A run that finished early leaves its pool worker waiting for work: a terminal's
    Ctrl-C reaches it too, and it must neither die nor print a traceback."""
    script = tmp_path / "idle_pool.py"
    script.write_text(IDLE_POOL)
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "ready"
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.strip() == "6"
    assert "Traceback" not in err


def test_first_seed_shifts_the_seeds_and_is_checked():
    spec = sweep_spec(("grpo",), 2, 1, env="parity", overrides=MICRO, first_seed=100)
    assert spec.seeds == (100, 101)
    assert sweep_spec(("grpo",), 2, 1, env="parity", overrides=MICRO).seeds == (0, 1)
    for bad in (-1, True, 1.5):
        with pytest.raises(ConfigError, match="--first-seed must be a seed >= 0"):
            sweep_spec(("grpo",), 2, 1, env="parity", overrides=MICRO, first_seed=bad)


def test_cross_sweep_pairs_presets_that_ran_in_separate_sweeps_of_one_setting(sweep, tmp_path, capsys):
    out, _, _ = sweep
    cross_sweep = load_script("cross_sweep")
    parts = {}
    for preset in ("grpo", "spear"):  # the sweep split in two, one preset each
        part = tmp_path / preset
        shutil.copytree(out, part)
        record = json.loads((part / "sweep.json").read_text())
        record["spec"]["presets"] = [preset]
        (part / "sweep.json").write_text(json.dumps(record))
        parts[preset] = part
    plots = tmp_path / "plots"
    assert cross_sweep.main([str(parts["grpo"]), str(parts["spear"]), "--plots", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "| spear | grpo | 2 |" in text  # gains, paired by seed across the two sweeps
    assert "| spear - grpo | 2 |" in text  # final evaluations pooled by episode
    assert sorted(p.name for p in plots.iterdir()) == ["entropy.png", "success.png", "tool_calls.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots.iterdir())
    with pytest.raises(SystemExit, match="preset spear ran in both"):
        cross_sweep.main([str(parts["spear"]), str(out)])
    record = json.loads((parts["spear"] / "sweep.json").read_text())
    record["spec"]["steps"] += 1
    (parts["spear"] / "sweep.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match=r"differs from .* in steps"):
        cross_sweep.main([str(parts["grpo"]), str(parts["spear"])])


def test_stability_reads_the_archived_lr_tuning_by_the_rule_set_down(capsys):
    """The lr tuning's drbot runs (sweeps/tune-novice-lr): both seeds break at 5e-4 (success
    falls 27.0 and 17.6 points; seed 100's entropy also doubles), none at 1e-4 or 3e-4."""
    stability = load_script("stability")
    archive = Path(__file__).resolve().parents[2] / "sweeps" / "tune-novice-lr"
    assert stability.main([str(archive)]) == 0
    verdicts, gaps = capsys.readouterr().out.split("\n\n| lr | base |")
    rows = verdicts.splitlines()
    assert rows[-3:] == ["| drbot | 1e-4 | 2 | 0 |", "| drbot | 3e-4 | 2 | 0 |", "| drbot | 5e-4 | 2 | 2 |"]
    assert "| drbot | 5e-4 | 100 | 27.0% -> 0.0% |" in rows[6]
    assert rows[6].endswith("| success falls, entropy runs away |")
    assert "no lr where spear and another preset ran the same seed" in gaps
    # beside spear's runs at 3e-4 (sweeps/stability-lr3e-4), paired by episode over seeds 100-101
    assert stability.main([str(archive), str(archive.parent / "stability-lr3e-4")]) == 0
    out = capsys.readouterr().out
    assert "| 3e-4 | drbot | 100, 101 | 28.7% | 23.6% | +5.1 (+0.7 to +9.5) | 0.03 |" in out
    assert "| 3e-4 | grpo | 100, 101 | 28.7% | 0.0% |" in out
    with pytest.raises(SystemExit, match="sokoban-novice/runs/drbot-seed0 evaluates"):
        stability.main([str(archive), str(archive.parent / "sokoban-novice")])  # other held-out tasks
    with pytest.raises(SystemExit, match="neither a run folder"):
        stability.main([str(archive / "runs")])


def test_cross_sweep_measures_the_archived_math_sweep_while_the_tool_bonus_is_on(capsys):
    """sweeps/math-toolshy-30 (docs/results_notes.md, item 1 on math): over steps 1-7, where
    spear's lambda_tool >= 0.85, tool calls rise alike with and without the bonus."""
    archive = Path(__file__).resolve().parents[2] / "sweeps" / "math-toolshy-30"
    assert load_script("cross_sweep").main([str(archive), "--presets", "spear,spear-no-tool-reward"]) == 0
    bonus = capsys.readouterr().out.split("While the tool bonus is on")[1]
    assert "tool calls / episode: steps 1-7" in bonus
    rows = [line for line in bonus.splitlines() if line.startswith("| spear")]
    assert rows[0].startswith(
        "| spear | 3 | 1.00 ± 0.00 | -0.001 ± 0.002 | 1.00 ± 0.00 | 0.24 ± 0.02 | +0.034 ± 0.006 |"
    )
    assert rows[1].startswith("| spear-no-tool-reward | 3 | 1.00 ± 0.00 |")


ORPHANED_POOL = """
import multiprocessing, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from spear.experiments.compare import _start_worker


def slow_pid(_):
    time.sleep(0.5)
    return os.getpid()


if __name__ == "__main__":
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(2, mp_context=spawn, initializer=_start_worker,
                               initargs=(1, False, spawn.Event(), spawn.Event()))
    workers = set()
    while len(workers) < 2:  # both workers started, ran a task, and now wait idle
        workers |= set(pool.map(slow_pid, range(2)))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_idle_sweep_workers_end_when_their_parent_is_killed(tmp_path):
    """A sweep's idle workers outlive a SIGKILLed parent only briefly: they would otherwise
    wait for work forever (the pool's queue stays open in the workers themselves)."""
    script = tmp_path / "orphaned_pool.py"
    script.write_text(ORPHANED_POOL)
    process = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    assert process.wait(timeout=120) == -signal.SIGKILL
    deadline = time.monotonic() + 60
    while group_alive(process.pid):
        assert time.monotonic() < deadline, "an idle worker outlived its killed parent"
        time.sleep(0.1)
