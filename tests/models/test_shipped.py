"""The shipped starting policies (household, shop, math): each loads, its tokenizer
round-trips its environment's prompts, its manifest matches the files, and a damaged copy is
reported by file name with the command that rebuilds it. Numbers come from the manifests,
never from here: a policy is rebuilt with other settings by the same command."""

import json
import shutil

import pytest
from transformers import Qwen2ForCausalLM

from spear.envs import make
from spear.models.embedded import count_parameters
from spear.models.shipped import (
    MANIFEST,
    MAX_BYTES,
    REQUIRED_FILES,
    StartingPolicyError,
    file_digest,
    load_starting_policy,
    read_manifest,
    rebuild_command,
    starting_policy_dir,
    verify_starting_policy,
)
from spear.rollout.prompts import react_turn_prompt
from spear.trainer.config import base_config, load_config

ENVS = ["household", "shop", "math", "sokoban"]


@pytest.mark.parametrize("env_name", ENVS)
def test_the_package_ships_a_policy_per_built_in_environment(env_name):
    folder = starting_policy_dir(env_name)
    assert folder is not None and folder.name == env_name


@pytest.fixture(scope="module", params=ENVS)
def env_name(request):
    return request.param


@pytest.fixture(scope="module")
def shipped(env_name):
    return load_starting_policy(env_name)


@pytest.fixture(scope="module")
def manifest(env_name):
    return json.loads((starting_policy_dir(env_name) / MANIFEST).read_text())


def first_prompt(env_name):
    """The first turn's prompt of a held-out episode, with the environment's profile options."""
    options = load_config("spear", [f"env.name={env_name}"])["env"]["options"]
    env = make(env_name, split="eval", **options)
    observation, _ = env.reset(3)
    prompt = react_turn_prompt(
        instruction=env.instruction,
        observation=observation,
        history=[],
        admissible=env.admissible_actions,
        history_length=1,
    )
    env.close()
    return prompt


def test_the_shipped_files_load_as_a_qwen2_causal_lm_and_its_tokenizer(shipped, manifest):
    model, tokenizer, loaded_manifest = shipped
    assert isinstance(model, Qwen2ForCausalLM)
    assert loaded_manifest == manifest
    assert count_parameters(model) == manifest["parameters"]
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None


def test_the_tokenizer_round_trips_a_prompt_and_renders_the_chat_template(shipped, env_name):
    _, tokenizer, _ = shipped
    prompt = first_prompt(env_name)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    assert tokenizer.decode(ids) == prompt
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    assert prompt in chat and chat.index(prompt) < len(chat) - len(prompt)


def test_the_manifest_matches_the_files_on_disk(manifest, env_name):
    folder = starting_policy_dir(env_name)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    assert set(manifest["files"]) == on_disk
    assert set(REQUIRED_FILES) <= on_disk
    for name, entry in manifest["files"].items():
        assert file_digest(folder / name) == (entry["bytes"], entry["sha256"]), name
    assert manifest["total_bytes"] == sum(e["bytes"] for e in manifest["files"].values())
    assert manifest["total_bytes"] + (folder / MANIFEST).stat().st_size <= MAX_BYTES
    assert manifest["command"].startswith(f"python scripts/build_starting_policy.py --env {env_name}")
    assert "--out" not in manifest["command"]
    assert manifest["env"] == manifest["config"]["env"]["name"] == env_name
    assert 0.0 <= manifest["eval"]["success_rate"] <= 1.0 and manifest["eval"]["episodes"] >= 1
    lo, hi = manifest["eval"]["success_ci"]
    assert lo <= manifest["eval"]["success_rate"] <= hi
    assert manifest["train_seconds"] > 0 and manifest["machine"]["torch"]
    assert verify_starting_policy(folder) == manifest


@pytest.mark.parametrize("env_name", ENVS)
def test_the_manifest_config_is_the_environments_profile(env_name):
    """The profile (spear/trainer/presets/envs/<env>.yaml) is the recipe: the shipped policy
    was built with it unchanged, so its documented command regenerates the policy. Keys newer
    than the build are read at their base.yaml defaults, which keep the old behaviour (e.g.
    ``sft.copy_steps: 0``, no copy warm-up; ``model.embedded.number_tokens: 0``)."""
    manifest = read_manifest(starting_policy_dir(env_name))
    profile = load_config("spear", [f"env.name={env_name}"])
    defaults = base_config()
    assert manifest["config"]["env"]["options"] == profile["env"]["options"]
    embedded = {**defaults["model"]["embedded"], **manifest["config"]["model"]["embedded"]}
    assert embedded == profile["model"]["embedded"]
    for section in ("sft", "rollout"):
        assert {**defaults[section], **manifest["config"][section]} == profile[section], section


def _copy(tmp_path, env_name="household"):
    copy = tmp_path / env_name
    shutil.copytree(starting_policy_dir(env_name), copy)
    return copy


def _delete_tokenizer(copy):
    (copy / "tokenizer.json").unlink()
    return "tokenizer.json"


def _flip_a_byte(copy):
    path = copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "model.safetensors"


def _truncate(copy):
    path = copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    return "model.safetensors"


def _edit_the_manifest(copy):
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["config.json"]["sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return "config.json"


@pytest.mark.parametrize("damage", [_delete_tokenizer, _flip_a_byte, _truncate, _edit_the_manifest])
def test_a_damaged_copy_names_the_file_and_the_rebuild_command(tmp_path, manifest, env_name, damage):
    copy = _copy(tmp_path, env_name)
    name = damage(copy)
    with pytest.raises(StartingPolicyError) as caught:
        verify_starting_policy(copy)
    message = str(caught.value)
    assert str(copy / name) in message
    assert manifest["command"] in message


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"files": {}})])
def test_a_missing_or_unreadable_manifest_gives_the_documented_command(tmp_path, content):
    copy = _copy(tmp_path)
    if content is None:
        (copy / MANIFEST).unlink()
    else:
        (copy / MANIFEST).write_text(content)
    with pytest.raises(StartingPolicyError) as caught:
        read_manifest(copy)
    assert MANIFEST in str(caught.value)
    assert rebuild_command("household") in str(caught.value)
    assert rebuild_command("household") == "python scripts/build_starting_policy.py --env household"


def test_environments_without_a_shipped_policy_have_none(monkeypatch, tmp_path):
    assert starting_policy_dir("no-such-env") is None
    assert starting_policy_dir("../household") is None
    monkeypatch.setattr("spear.models.shipped.pretrained_root", lambda: tmp_path)
    assert starting_policy_dir("household") is None
    with pytest.raises(StartingPolicyError, match="no expert starting policy is shipped for environment"):
        load_starting_policy("household")


@pytest.mark.parametrize("env_name", ["household", "math", "shop", "sokoban"])
def test_each_shipped_novice_knows_the_protocol_but_not_the_tasks(env_name):
    """docs/DESIGN.md, "Novice starting policies": well-formed on >= 95% of turns, 5-30%
    held-out success at the evaluation temperature (greedy no better than 30%), and below
    its environment's expert clone on the same episodes."""
    novice = read_manifest(starting_policy_dir(env_name, "novice"))
    expert = read_manifest(starting_policy_dir(env_name))
    assert novice["kind"] == "novice" and f"--env {env_name} --policy novice" in novice["command"]
    assert novice["eval"]["format_error_rate"] <= 0.05
    assert 0.05 <= novice["eval"]["success_rate"] <= 0.30
    assert novice["eval_greedy"]["success_rate"] <= 0.30
    assert novice["eval"]["success_rate"] < expert["eval"]["success_rate"]
    assert novice["eval"]["settings"] == expert["eval"]["settings"]  # the same held-out episodes
