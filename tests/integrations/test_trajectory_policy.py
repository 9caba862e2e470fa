"""The household policy shipped for the trajectory layout (the TRL integration's start,
docs/INTEGRATIONS.md): ``spear.models.shipped`` finds it by environment and layout, its
manifest matches the files and records a trajectory-layout cold start, and a damaged or
missing copy names the file and the command that rebuilds it in its own folder (never over
the turn-layout policy). Numbers come from the manifest, never from here."""

import shutil

import pytest
import yaml

from spear.models.shipped import (
    LAYOUTS,
    MANIFEST,
    MAX_BYTES,
    REQUIRED_FILES,
    StartingPolicyError,
    file_digest,
    folder_key,
    load_starting_policy,
    read_manifest,
    rebuild_command,
    starting_policy_dir,
    verify_starting_policy,
)
from spear.rollout.config import LAYOUTS as ROLLOUT_LAYOUTS
from spear.trainer.config import load_config


@pytest.fixture(scope="module")
def folder():
    path = starting_policy_dir("household", layout="trajectory")
    assert path is not None, "no household policy is shipped for the trajectory layout"
    return path


def test_the_layouts_known_to_the_shipped_module_are_the_rollout_layouts():
    assert set(LAYOUTS) == set(ROLLOUT_LAYOUTS)


def test_each_layout_has_its_own_folder(folder):
    turn = starting_policy_dir("household")
    assert turn is not None and turn != folder
    assert folder.parent == turn.parent and folder.name == "household-trajectory"
    assert folder_key(folder) == ("household", "expert", "trajectory")
    assert folder_key(turn) == ("household", "expert", "turn")
    assert starting_policy_dir("household", layout="no-such-layout") is None
    assert starting_policy_dir("household", kind="no-such-kind") is None
    assert starting_policy_dir("no-such-env", layout="trajectory") is None


def test_the_manifest_matches_the_files_and_records_a_trajectory_cold_start(folder):
    manifest = verify_starting_policy(folder)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    assert set(manifest["files"]) == on_disk and set(REQUIRED_FILES) <= on_disk
    for name, entry in manifest["files"].items():
        assert file_digest(folder / name) == (entry["bytes"], entry["sha256"]), name
    assert manifest["total_bytes"] + (folder / MANIFEST).stat().st_size <= MAX_BYTES
    # made by the builder, with the recorded command (the builder records it without --out)
    assert manifest["command"].startswith("python scripts/build_starting_policy.py --env household")
    assert "rollout.layout=trajectory" in manifest["command"].split()
    assert manifest["env"] == "household" and manifest["config"]["rollout"]["layout"] == "trajectory"
    assert manifest["eval"]["settings"]["rollout"]["layout"] == "trajectory"
    lo, hi = manifest["eval"]["success_ci"]
    assert lo <= manifest["eval"]["success_rate"] <= hi and manifest["eval"]["episodes"] >= 1
    # spear eval plays it in the layout it was cold-started in
    settings = yaml.safe_load((folder / "spear_run.yaml").read_text())
    assert settings["rollout"]["layout"] == "trajectory"


def test_its_settings_are_the_household_profile_in_the_trajectory_layout(folder):
    """The TRL example's config (preset spear, rollout.layout=trajectory) plays the prompts it
    was cold-started on: the settings that shape a prompt agree."""
    manifest = read_manifest(folder)
    config = load_config("spear", ["env.name=household", "rollout.layout=trajectory"])
    assert manifest["config"]["env"]["options"] == config["env"]["options"]
    for key in ("layout", "history_length", "show_admissible", "prompt_style", "max_new_tokens"):
        assert manifest["config"]["rollout"][key] == config["rollout"][key], key


def test_it_loads_by_environment_and_layout(folder):
    model, tokenizer, manifest = load_starting_policy("household", layout="trajectory")
    assert manifest == read_manifest(folder)
    assert model.config.vocab_size == len(tokenizer)


def _copy(tmp_path, folder):
    copy = tmp_path / "pretrained" / folder.name
    shutil.copytree(folder, copy)
    return copy


def test_a_damaged_copy_names_the_file_and_rebuilds_into_its_own_folder(tmp_path, folder):
    copy = _copy(tmp_path, folder)
    manifest = read_manifest(copy)
    path = copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StartingPolicyError) as caught:
        verify_starting_policy(copy)
    message = str(caught.value)
    assert str(path) in message
    assert f"Rebuild it with: {manifest['command']}" in message


def test_a_missing_manifest_or_policy_gives_the_command_for_the_layout(tmp_path, folder, monkeypatch):
    copy = _copy(tmp_path, folder)
    (copy / MANIFEST).unlink()
    with pytest.raises(StartingPolicyError) as caught:
        read_manifest(copy)
    command = rebuild_command("household", layout="trajectory")
    assert command == "python scripts/build_starting_policy.py --env household rollout.layout=trajectory"
    assert f"{MANIFEST} is missing. Rebuild it with: {command}" in str(caught.value)

    (copy / "tokenizer.json").unlink()
    monkeypatch.setattr("spear.models.shipped.pretrained_root", lambda: tmp_path / "pretrained")
    with pytest.raises(StartingPolicyError, match=r"manifest\.json is missing"):
        load_starting_policy("household", layout="trajectory")
    shutil.rmtree(copy)
    with pytest.raises(StartingPolicyError) as caught:
        load_starting_policy("household", layout="trajectory")
    message = str(caught.value)
    assert "no expert starting policy in the 'trajectory' layout is shipped for environment 'household'" in (
        message
    )
    assert command in message
