"""Presets, overrides and validation: every config error is raised before compute, naming the key."""

import re
from importlib import resources

import pytest

from spear.trainer.config import ConfigError, available_presets, load_config, parse_override

PAPER_ROWS = {
    "grpo",
    "gigpo",
    "drbot",
    "drbot-gigpo",
    "spear",
    "grpo+spear",
    "gigpo+spear",
    "drbot-gigpo+spear",
}


def test_every_paper_row_has_a_preset_and_each_resolves():
    assert set(available_presets()) >= PAPER_ROWS
    for name in available_presets():
        config = load_config(name)
        assert config["preset"] == name


def test_presets_encode_the_method_switches_of_spec_7_1():
    grpo, drbot, spear = load_config("grpo"), load_config("drbot"), load_config("spear")
    assert grpo["algorithm"]["normalize_by_std"] and grpo["actor"]["agg_mode"] == "token-mean"
    assert (grpo["actor"]["clip_low"], grpo["actor"]["clip_high"]) == (0.2, 0.2)
    assert not drbot["algorithm"]["normalize_by_std"]
    assert drbot["actor"]["agg_mode"] == "seq-mean-token-sum-norm" and drbot["actor"]["clip_high"] == 0.28
    assert drbot["algorithm"]["group_filter"]["ratio"] == 0.75 and len(drbot["algorithm"]["filters"]) == 4
    assert not drbot["sil"]["enabled"] and drbot["actor"]["loss_mode"] == "vanilla"
    assert spear["sil"]["enabled"] and spear["actor"]["loss_mode"] == "clip_cov"
    assert spear["algorithm"]["tool_reward"]["schedule"] == "cosine"
    assert (spear["actor"]["cov"]["ratio"], spear["actor"]["cov"]["ub"]) == (0.0002, 5.0)
    assert (spear["sil"]["cov"]["ratio"], spear["sil"]["cov"]["lb"], spear["sil"]["cov"]["ub"]) == (
        0.02,
        2.0,
        60.0,
    )
    assert load_config("gigpo+spear")["algorithm"]["estimator"] == "gigpo"


def test_the_official_gigpo_spear_script_is_dr_bot_gigpo_plus_spear():
    """spec 10: filters, group filter 0.75, sum-norm, clip-high 0.28, norm_adv_by_std_in_grpo
    False (replay advantages R - b), GiGPO in mean_std_norm, Clip-Cov, tool reward, SIL."""
    config = load_config("drbot-gigpo+spear")
    algorithm, actor, sil = config["algorithm"], config["actor"], config["sil"]
    assert (algorithm["estimator"], algorithm["gigpo"]["mode"]) == ("gigpo", "mean_std_norm")
    assert len(algorithm["filters"]) == 4 and algorithm["group_filter"]["ratio"] == 0.75
    assert (actor["agg_mode"], actor["clip_high"], actor["loss_mode"]) == (
        "seq-mean-token-sum-norm",
        0.28,
        "clip_cov",
    )
    assert algorithm["normalize_by_std"] is False and sil["buffer"]["normalize_by_std"] == "auto"
    assert sil["enabled"] and algorithm["tool_reward"]["schedule"] == "cosine"


def test_overrides_parse_yaml_values():
    config = load_config("spear", ["actor.lr=3e-4", "algorithm.filters=[overlong]", "rollout.group_size=8"])
    assert config["actor"]["lr"] == 3e-4
    assert config["algorithm"]["filters"] == ["overlong"]
    assert config["rollout"]["group_size"] == 8
    assert parse_override("env.options={num_receptacles: 6}") == (["env", "options"], {"num_receptacles": 6})


@pytest.mark.parametrize(
    ("preset", "overrides", "message"),
    [
        ("nope", [], "unknown preset 'nope'"),
        ("spear", ["actor.lrr=1"], "unknown config key 'actor.lrr'"),
        ("spear", ["optimizer.lr=1"], "unknown config key 'optimizer'"),
        ("spear", ["env.name=alfred"], "env.name': unknown environment 'alfred'"),
        ("spear", ["actor.micro_batch_size=100"], "must divide actor.mini_batch_size"),
        ("spear", ["actor.forward_tokens=0"], "'actor.forward_tokens' must be >= 1"),
        ("spear", ["steps=ten"], "'steps' must be int"),
        ("spear", ["steps=0"], "'steps' must be >= 1"),
        ("spear", ["rollout.layout=tree"], "rollout.layout must be one of"),
        ("spear", ["rollout.decode=fast"], "rollout.decode must be one of"),
        ("spear", ["actor.loss_mode=ppo"], "actor.loss_mode must be one of"),
        ("spear", ["algorithm.filters=[toxic]"], "unknown filter 'toxic'"),
        ("spear", ["sil.buffer.capacity=0"], "sil.buffer': capacity must be >= 1"),
        ("spear", ["sil.buffer.capacity_ratio=0.0"], "sil.buffer': capacity_ratio must be > 0"),
        ("spear", ["sil.buffer.colour=red"], "unknown config key 'sil.buffer.colour'"),
        ("gigpo", ["rollout.layout=trajectory"], "gigpo needs rollout.layout=turn"),
        ("spear", ["rollout.group_size=1"], "group_size' must be >= 2"),
        ("spear", ["actor"], "must look like key.sub=value"),
        ("spear", ["actor=3"], "is a section"),
        ("spear", ["sft.enabled=maybe"], "sft.enabled' must be auto, true or false"),
    ],
)
def test_config_errors_name_the_key(preset, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(preset, overrides)


def test_a_user_yaml_file_is_merged(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("steps: 7\nrollout: {group_size: 6}\n")
    config = load_config("grpo", config_file=path)
    assert (config["steps"], config["rollout"]["group_size"]) == (7, 6)
    path.write_text("rollout: {group_sise: 6}\n")
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'rollout.group_sise'")):
        load_config("grpo", config_file=path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("grpo", config_file=tmp_path / "missing.yaml")


def test_ablation_and_variant_presets_change_exactly_one_switch():
    spear = load_config("spear")
    changed = {
        "spear-no-tool-reward": ("algorithm", "tool_reward", "schedule", "none"),
        "spear-no-sil": ("sil", "enabled", None, False),
        "spear-decay-recal": ("sil", "buffer", "recalibration", "decay"),
        "spear-prioritized": ("sil", "buffer", "sampling", "prioritized"),
        "spear-small-buffer": ("sil", "buffer", "capacity_ratio", 0.125),
    }
    for name, (section, key, sub, value) in changed.items():
        config = load_config(name)
        expected = load_config("spear")
        if sub is None:
            expected[section][key] = value
        else:
            expected[section][key][sub] = value
        expected["preset"] = name
        assert config == expected, name
    variant, expected = load_config("gigpo+spear-mixed-std"), load_config("gigpo+spear")
    expected["sil"]["buffer"]["std_over"] = "mixed"
    expected["preset"] = "gigpo+spear-mixed-std"
    assert variant == expected
    vanilla = load_config("spear-vanilla-loss")
    assert (vanilla["actor"]["loss_mode"], vanilla["sil"]["loss_mode"]) == ("vanilla", "vanilla")
    assert vanilla["sil"]["cov"] == spear["sil"]["cov"]


def test_preset_inheritance_cycles_are_reported(monkeypatch):
    from spear.trainer import config as config_module

    texts = {"a": "defaults: b\n", "b": "defaults: a\n"}
    monkeypatch.setattr(config_module, "_preset_text", lambda name: texts[name])
    with pytest.raises(ConfigError, match="a -> b -> a"):
        config_module.preset_overrides("a")


def test_each_environment_starts_from_its_profile():
    assert load_config("spear")["env"]["name"] == "math"  # the main job's environment
    household = load_config("spear", ["env.name=household"])
    assert household["env"]["options"] == {"num_receptacles": 4, "num_distractors": 1, "max_turns": 20}
    assert household["rollout"]["max_new_tokens"] == 32 and household["sft"]["episodes"] == 960
    math = load_config("spear", ["env.name=math"])
    assert math["env"]["options"]["max_turns"] == 4 and math["rollout"]["max_new_tokens"] == 128
    assert math["env"]["options"]["tasks"] == ["basic_arithmetic", "chain_sum", "gcd", "lcm"]
    assert math["env"]["options"]["code_answers"] and math["model"]["shipped"] == "novice"
    # the official math recipe: no entropy bonus, no invalid-action penalty (spec 2.3, 3.10)
    assert math["actor"]["entropy_coeff"] == 0.0 and math["algorithm"]["invalid_penalty"] == 0.0
    assert household["algorithm"]["invalid_penalty"] == 0.1
    shop = load_config("spear", ["env.name=shop"])
    assert shop["env"]["options"]["max_turns"] == 10 and shop["rollout"]["max_new_tokens"] == 48
    assert shop["model"]["shipped"] == "novice"
    assert load_config("spear", ["env.name=textworld"])["env"]["options"] == {}  # no profile: base.yaml
    profiles = resources.files("spear.trainer").joinpath("presets", "envs").iterdir()
    for name in sorted(p.name.removesuffix(".yaml") for p in profiles):
        assert load_config("grpo", [f"env.name={name}"])["env"]["name"] == name  # known keys only


def test_user_layers_win_over_the_environment_profile(tmp_path):
    math = load_config("grpo", ["env.name=math", "rollout.max_new_tokens=64"])
    assert math["rollout"]["max_new_tokens"] == 64
    user = tmp_path / "mine.yaml"
    user.write_text("env:\n  name: math\nrollout:\n  max_new_tokens: 96\n")
    assert load_config("spear", config_file=user)["rollout"]["max_new_tokens"] == 96


def test_environment_options_take_new_keys_one_by_one():
    math = load_config("spear", ["env.name=math", "env.options.tasks=[gcd, lcm]"])["env"]["options"]
    assert math["tasks"] == ["gcd", "lcm"] and math["max_turns"] == 4
    replaced = load_config("spear", ["env.options={max_turns: 5}"])["env"]["options"]
    assert replaced == {"max_turns": 5}  # a whole mapping replaces the profile's options
    with pytest.raises(ConfigError, match=r"unknown config key 'actor\.options'"):
        load_config("spear", ["actor.options.x=1"])
