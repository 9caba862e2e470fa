"""model.init and the shipped starting policy in the trainer: config resolution, spear train
from the shipped policy (no SFT) and from scratch, a damaged policy's error, spear compare
from the shipped policy, and the builder on tiny settings."""

import importlib.util
import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from micro import TINY_MODEL as TINY_MODEL_SIZES

from spear.cli import main
from spear.experiments.starting_policy import PACKAGES, RECIPES, build_starting_policy, builder_config, recipe
from spear.experiments.sweep import open_sweep, read_sweep, sweep_spec
from spear.models.embedded import count_parameters, load_model_and_tokenizer
from spear.models.shipped import MANIFEST, StartingPolicyError, starting_policy_dir, verify_starting_policy
from spear.trainer.config import ConfigError, load_config
from spear.trainer.loop import Trainer
from spear.trainer.run import (
    START_RECORD,
    prepared_model_path,
    prompt_differences,
    recorded_start_outcomes,
    runs_sft,
    setup_model,
    start_kind,
)

# the policy `spear train --env household` starts from: the novice (the profile's model.shipped)
SHIPPED = starting_policy_dir("household", "novice")
EXPERT = starting_policy_dir("household")
# one short RL step on household: 2 tasks x 2 copies, 3 turns, 2 eval episodes before and after
TINY_RL = [
    "--steps",
    "1",
    "--quiet",
    "--env",
    "household",
    "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}",
    "rollout.tasks_per_step=2",
    "rollout.group_size=2",
    "actor.mini_batch_size=16",
    "actor.micro_batch_size=8",
    "eval.every=0",
    "eval.final_episodes=2",
    "checkpoint.every=0",
    "logging.tensorboard=false",
    "logging.plots=false",
]
TINY_MODEL = [*TINY_MODEL_SIZES, "sft.episodes=4", "sft.epochs=1"]


def household_config(*overrides: str) -> dict:
    """These tests exercise the shipped household policies (the main job's environment is math)."""
    return load_config("spear", ["env.name=household", *overrides])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from two threads on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def record(run_dir):
    return json.loads((Path(run_dir) / START_RECORD).read_text())


# ----------------------------------------------------------------------------- config
def test_model_init_must_be_auto_shipped_or_scratch():
    with pytest.raises(ConfigError, match=r"model\.init must be one of"):
        household_config("model.init=pretrained")


def test_shipped_without_a_shipped_policy_names_the_env_and_the_build_command():
    assert starting_policy_dir("textworld") is None
    with pytest.raises(ConfigError) as caught:
        household_config("env.name=textworld", "model.init=shipped")
    assert "'textworld'" in str(caught.value)
    assert "python scripts/build_starting_policy.py --env textworld" in str(caught.value)


def test_auto_is_shipped_where_a_policy_is_shipped_and_scratch_elsewhere():
    # the main job: math from its tool-shy novice
    assert prepared_model_path(load_config("spear"), Path("run")) == starting_policy_dir("math", "novice")
    household = household_config()
    assert household["model"]["init"] == "auto"
    assert start_kind(household) == "shipped" and not runs_sft(household)
    assert prepared_model_path(household, Path("run")) == SHIPPED
    textworld = household_config("env.name=textworld")
    assert start_kind(textworld) == "scratch" and runs_sft(textworld)
    assert prepared_model_path(textworld, Path("run")) == Path("run") / "sft_model"
    scratch = household_config("model.init=scratch")
    assert start_kind(scratch) == "scratch" and runs_sft(scratch)
    # a given model ignores model.init; sft.enabled=true continues SFT on a given or shipped start
    given = household_config("model.path=somewhere", "model.init=scratch")
    assert start_kind(given) == "path" and not runs_sft(given)
    again = household_config("sft.enabled=true")
    assert start_kind(again) == "shipped" and runs_sft(again)


def test_model_shipped_chooses_the_novice_or_the_expert_clone():
    """household's profile starts RL from the novice; the expert clone is one override away;
    an environment that ships no novice says so and how to build one."""
    assert household_config()["model"]["shipped"] == "novice"
    expert = household_config("model.shipped=expert")
    assert prepared_model_path(expert, Path("run")) == EXPERT != SHIPPED
    assert household_config("env.name=textworld")["model"]["shipped"] == "expert"  # base default
    with pytest.raises(ConfigError, match=r"model\.shipped"):
        household_config("model.shipped=master")
    with pytest.raises(ConfigError) as caught:
        household_config("env.name=textworld", "model.shipped=novice", "model.init=shipped")
    assert "no novice starting policy is shipped for environment 'textworld'" in str(caught.value)
    assert "build_starting_policy.py --env textworld --policy novice" in str(caught.value)
    # auto with no novice for the environment: built from scratch, as for any unshipped policy
    assert start_kind(household_config("env.name=textworld", "model.shipped=novice")) == "scratch"


# ----------------------------------------------------------------------------- spear train
def test_spear_train_starts_rl_from_the_shipped_policy_without_sft(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *TINY_RL]) == 0
    assert not (run / "sft_model").exists() and not (run / "initial_model").exists()
    started = record(run)
    assert started["init"] == "shipped" and started["path"] == str(SHIPPED)
    assert not started["cold_start_in_run"]
    assert started["manifest"] == verify_starting_policy(SHIPPED)
    assert (run / "final_model" / "config.json").is_file()
    out, err = capsys.readouterr()
    assert "eval success" in out
    assert "warning: rollout." not in err  # the defaults build the prompts the policy learnt on


def test_rl_on_prompts_the_policy_was_not_cold_started_on_is_warned():
    manifest = verify_starting_policy(SHIPPED)
    built = manifest["config"]["rollout"]
    assert prompt_differences(manifest, household_config()) == []
    other = "full" if built.get("prompt_style") == "compact" else "compact"
    longer = built["history_length"] + 1
    (style, history) = prompt_differences(
        manifest, household_config(f"rollout.prompt_style={other}", f"rollout.history_length={longer}")
    )
    assert style.startswith(f"rollout.prompt_style is {other!r} but the shipped policy")
    assert history.startswith(f"rollout.history_length is {longer} but")
    (layout,) = prompt_differences(manifest, household_config("rollout.layout=trajectory"))
    assert layout.startswith(
        "rollout.layout is 'trajectory' but the shipped policy was cold-started with 'turn'"
    )
    before_prompt_style = {"history_length": built["history_length"]}  # manifests without the key
    old = {**manifest, "config": {**manifest["config"], "rollout": before_prompt_style}}
    assert prompt_differences(old, household_config("rollout.prompt_style=full")) == []


def test_spear_train_from_scratch_still_builds_and_cold_starts(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--from-scratch", "--run-dir", str(run), *TINY_RL, *TINY_MODEL]) == 0
    assert (run / "initial_model" / "tokenizer.json").is_file()
    assert (run / "sft_model" / "model.safetensors").is_file()
    assert record(run)["init"] == "scratch" and record(run)["cold_start_in_run"]
    assert main(["train", "--from-scratch", "--model", str(SHIPPED), *TINY_RL]) == 2


def test_sft_enabled_true_continues_sft_on_the_shipped_policy(tmp_path):
    config = household_config(
        "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}",
        "sft.enabled=true",
        "sft.episodes=2",
        "sft.epochs=1",
    )
    setup_model(config, tmp_path, quiet=True)
    assert record(tmp_path)["init"] == "shipped" and record(tmp_path)["cold_start_in_run"]
    tuned, _ = load_model_and_tokenizer(tmp_path / "sft_model")
    shipped, _ = load_model_and_tokenizer(SHIPPED)
    assert count_parameters(tuned) == count_parameters(shipped)  # the shipped model, trained further
    assert not all(torch.equal(a, b) for a, b in zip(tuned.parameters(), shipped.parameters(), strict=True))


def test_spear_sft_builds_from_scratch(tmp_path):
    assert main(["sft", "--env", "household", "--out", str(tmp_path), "--quiet", *TINY_MODEL]) == 0
    assert (tmp_path / "initial_model").is_dir() and (tmp_path / "sft_model").is_dir()
    assert record(tmp_path)["init"] == "scratch"


@pytest.fixture
def damaged_package(tmp_path, monkeypatch):
    """A copy of the shipped policies in tmp_path, returned by pretrained_root()."""
    root = tmp_path / "pretrained"
    shutil.copytree(SHIPPED, root / SHIPPED.name)
    monkeypatch.setattr("spear.models.shipped.pretrained_root", lambda: root)
    return root / SHIPPED.name


def test_a_damaged_shipped_policy_stops_spear_train_with_the_file_and_the_rebuild_command(
    damaged_package, tmp_path, capsys
):
    (damaged_package / "tokenizer.json").unlink()
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *TINY_RL]) == 2
    err = capsys.readouterr().err
    manifest = json.loads((damaged_package / MANIFEST).read_text())
    assert str(damaged_package / "tokenizer.json") in err and manifest["command"] in err
    assert "--from-scratch" in err and "Traceback" not in err and err.count("\n") == 1
    assert not run.exists()  # refused before the run directory is made


def test_a_damaged_shipped_policy_fails_load_and_the_builder_config_is_guarded(damaged_package):
    (damaged_package / MANIFEST).unlink()
    with pytest.raises(StartingPolicyError, match=r"manifest\.json"):
        setup_model(household_config(), damaged_package.parent.parent / "run", quiet=True)
    with pytest.raises(ConfigError, match=r"sft\.enabled"):
        build_starting_policy("household", overrides=["sft.enabled=false"])
    with pytest.raises(ConfigError, match=r"model\.path"):
        build_starting_policy("household", overrides=["model.path=x"])


# ----------------------------------------------------------------------------- spear compare
def test_compare_starts_every_run_from_the_shipped_policy(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--presets", "grpo", "--seeds", "1", "--steps", "1", "--out", str(out)]
    assert main([*args, *TINY_RL[2:]]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["spec"]["init"] == "shipped" and sweep["start"] == str(SHIPPED)
    assert (
        sweep["start_policy"]["sha256"]
        == verify_starting_policy(SHIPPED)["files"]["model.safetensors"]["sha256"]
    )
    assert not (out / "cold_start").exists()
    config = (out / "runs" / "grpo-seed0" / "config.yaml").read_text()
    assert f"path: {SHIPPED}" in config
    assert "shipped starting policy of household (`household-novice`)" in (out / "results.md").read_text()
    # the start is part of the spec: the same --out from scratch is another sweep
    assert main([*args, "--from-scratch", *TINY_RL[2:]]) == 2
    assert main([*args, *TINY_RL[2:], "model.init=scratch"]) == 2


def test_a_sweep_recorded_before_model_init_continues_from_scratch_only(tmp_path):
    """sweep.json files written before shipped policies lack spec.init: they cold-started."""
    spec = sweep_spec(["grpo"], 1, 1, env="household", from_scratch=True)
    assert spec.init == "scratch" and sweep_spec(["grpo"], 1, 1, env="household").init == "shipped"
    open_sweep(tmp_path, spec, start=tmp_path / "cold_start" / "sft_model", command="c", machine={})
    path = tmp_path / "sweep.json"
    legacy = json.loads(path.read_text())
    del legacy["spec"]["init"]
    path.write_text(json.dumps(legacy))
    assert read_sweep(tmp_path)[0] == spec
    open_sweep(tmp_path, spec, start=tmp_path / "cold_start" / "sft_model", command="c", machine={})
    shipped = sweep_spec(["grpo"], 1, 1, env="household")
    with pytest.raises(ConfigError, match="add --from-scratch to continue it"):
        open_sweep(tmp_path, shipped, start=SHIPPED, command="c", machine={})


# ----------------------------------------------------------------------------- the builder
@pytest.mark.slow
def test_the_builder_writes_a_verified_policy_with_its_manifest(tmp_path):
    out = tmp_path / "pretrained" / "household"
    overrides = [*TINY_MODEL, "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}"]
    manifest = build_starting_policy(
        "household", out, overrides, eval_episodes=2, command="python build --tiny", quiet=True
    )
    assert verify_starting_policy(out) == manifest == json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "python build --tiny"
    model, _ = load_model_and_tokenizer(out)
    assert manifest["parameters"] == count_parameters(model)
    assert manifest["config"]["model"]["embedded"]["hidden_size"] == 32
    assert manifest["config"]["sft"]["episodes"] == 4
    assert manifest["config"]["env"] == {
        "name": "household",
        "options": {"num_receptacles": 4, "num_distractors": 1, "max_turns": 3},
    }
    assert manifest["eval"]["episodes"] == 2
    assert manifest["eval"]["temperature"] == household_config()["eval"]["temperature"]
    assert manifest["total_bytes"] == sum(f["bytes"] for f in manifest["files"].values())
    assert {"cpu", "cpu_capability", "torch", "torch_threads"} <= set(manifest["machine"])
    assert manifest["created"].endswith("Z") and manifest["train_seconds"] > 0
    assert manifest["kind"] == "expert"
    # the same episodes greedily: a policy's success is stated at both temperatures
    greedy = manifest["eval_greedy"]
    assert greedy["temperature"] == 0.0 == greedy["settings"]["temperature"]
    assert greedy["episodes"] == 2 and 0.0 <= greedy["success_rate"] <= 1.0
    assert {k: v for k, v in greedy["settings"].items() if k != "temperature"} == {
        k: v for k, v in manifest["eval"]["settings"].items() if k != "temperature"
    }
    for evaluation in (manifest["eval"], greedy):
        assert (
            0.0 <= evaluation["format_error_rate"] <= 1.0 and 0.0 <= evaluation["invalid_action_rate"] <= 1.0
        )
    # what the weights depend on: every version, and the source they were built from
    from importlib import metadata

    assert manifest["versions"]["transformers"] == metadata.version("transformers")
    assert manifest["versions"]["torch"] == metadata.version("torch")
    assert set(manifest["versions"]) == {"python", *PACKAGES}
    assert manifest["commit"] is None or len(manifest["commit"].removesuffix("+dirty")) == 40
    # the script is the documented entry point; a rebuild swaps the folder, leaving nothing behind
    script_path = Path(__file__).parents[2] / "scripts" / "build_starting_policy.py"
    spec = importlib.util.spec_from_file_location("build_starting_policy", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--out", str(out), "--eval-episodes", "2", "--quiet", *overrides, "seed=1"]
    assert script.main(argv) == 0
    rebuilt = verify_starting_policy(out)
    # the recorded command rebuilds into the package folder: --out is left out
    assert rebuilt["command"] == (
        "python scripts/build_starting_policy.py --eval-episodes 2 --quiet "
        + " ".join(shlex.quote(arg) for arg in [*overrides, "seed=1"])
    )
    assert rebuilt["config"]["seed"] == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["household"]


@pytest.mark.slow
def test_the_shipped_policys_recorded_evaluation_is_what_a_run_measures(tmp_path):
    """The first 64 recorded outcomes are the 64 episodes a run's eval engine plays, exactly."""
    config = household_config("eval.final_episodes=64")
    model, tokenizer = setup_model(config, tmp_path)
    reused = recorded_start_outcomes(config, tmp_path, model)
    assert reused is not None and len(reused["won"]) == 64
    assert reused == Trainer(config, model, tokenizer, tmp_path).held_out_outcomes(64)  # episode by episode
    for other in ("eval.final_episodes=100", "eval.temperature=1.0", "eval.reuse_start_eval=false"):
        assert recorded_start_outcomes(household_config(other), tmp_path, model) is None
    longer = household_config("eval.final_episodes=1024")  # more than the build played
    assert recorded_start_outcomes(longer, tmp_path, model) is None


@pytest.mark.slow
def test_spear_train_says_when_it_reuses_the_builds_evaluation(tmp_path, capsys):
    out = tmp_path / "policy"
    overrides = [*TINY_MODEL, "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}"]
    manifest = build_starting_policy("household", out, overrides, eval_episodes=2, command="c", quiet=True)
    assert set(manifest["eval"]["outcomes"]) == {"won", "score", "turns", "tool_calls", "failed"}
    assert manifest["eval"]["settings"]["seed"] == 7919 and manifest["eval"]["settings"]["batch"] == 64
    talkative = [arg for arg in TINY_RL if arg != "--quiet"]
    assert main(["train", "--run-dir", str(tmp_path / "a"), "--model", str(out), *talkative]) == 0
    assert "measured when the policy was built" in capsys.readouterr().out
    first = json.loads((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()[0])
    rec = manifest["eval"]
    assert first == {"step": 0, "eval/success_rate": rec["success_rate"], "eval/score": rec["score"]}
    again = [*talkative, "eval.reuse_start_eval=false"]
    assert main(["train", "--run-dir", str(tmp_path / "b"), "--model", str(out), *again]) == 0
    assert "measured when the policy was built" not in capsys.readouterr().out


def test_each_kind_of_policy_has_its_recipe_and_its_folder():
    """The novice recipe applies over the environment's profile and under the command line's
    overrides; an environment without one, or an unknown kind, is a clear error."""
    assert recipe("household") == () and recipe("household", "novice") == RECIPES["novice"]["household"]
    novice = builder_config("household", ["sft.epochs=2"], "novice")
    expert = builder_config("household")
    for override in recipe("household", "novice"):
        key, value = override.split("=")
        section, name = key.split(".")
        if key != "sft.epochs":
            assert str(novice[section][name]) == value and novice[section][name] != expert[section][name]
    assert novice["sft"]["epochs"] == 2  # the command line wins
    with pytest.raises(ConfigError, match="no novice recipe for environment 'textworld'"):
        recipe("textworld", "novice")
    with pytest.raises(ConfigError, match="--policy must be one of expert, novice"):
        recipe("household", "master")


def test_the_rebuild_check_finds_a_tiny_policy_identical_and_a_changed_one_out(tmp_path, monkeypatch):
    """scripts/check_policy_rebuild.py reruns the manifest's command: a deterministic build
    gives the same bytes; a policy whose recorded success is moved away is reported."""
    root = tmp_path / "pretrained"
    overrides = [*TINY_MODEL, "env.options={num_receptacles: 4, num_distractors: 1, max_turns: 3}"]
    command = shlex.join(
        # --threads 1 as this module's builds: float sums, and so the bytes, follow the thread count
        [
            "python",
            "scripts/build_starting_policy.py",
            "--threads",
            "1",
            "--eval-episodes",
            "2",
            "--quiet",
            *overrides,
        ]
    )
    build_starting_policy(
        "household", root / "household", overrides, eval_episodes=2, command=command, quiet=True
    )
    monkeypatch.setattr("spear.models.shipped.pretrained_root", lambda: root)
    script_path = Path(__file__).parents[2] / "scripts" / "check_policy_rebuild.py"
    spec = importlib.util.spec_from_file_location("check_policy_rebuild", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "check.json"
    assert script.main(["household", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["verdict"] == "identical" and all(result["files_identical"].values())
    assert result["same_cpu"] and result["same_versions"]

    # other bytes and a success outside the recorded interval: "differs", exit code 1
    manifest_path = root / "household" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["model.safetensors"]["sha256"] = "0" * 64
    manifest["eval"]["success_ci"] = [2.0, 3.0]
    manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setattr("spear.models.shipped.verify_starting_policy", lambda path: manifest)
    assert script.main(["household"]) == 1
