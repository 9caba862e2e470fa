"""The cold start's demonstrations: the noisy expert, stale actions and what SFT imitates."""

import pytest
from micro import micro_config

from spear.envs.actions import parse_react
from spear.envs.pool import EnvPool
from spear.models.embedded import load_model_and_tokenizer
from spear.rollout.engine import RolloutEngine
from spear.trainer.config import ConfigError
from spear.trainer.loop import rollout_config
from spear.trainer.sft import NoisyExpert, collect_demonstrations, demonstration_batch

HOUSEHOLD = {"num_receptacles": 4, "num_distractors": 1, "max_turns": 20, "split": "train"}


def _action(text: str) -> str:
    return parse_react(text, None, require_think=False).action


def test_stale_action_was_admissible_before_and_is_rejected_now():
    pool = EnvPool("household", 1, env_options=HOUSEHOLD)
    pool.reset([3])
    env = pool.env(0)
    expert = NoisyExpert(noise=0.0, stale_noise=1.0, keep_think=False)
    first = _action(expert(pool, [0])[0])
    assert first == _action(env.solver())  # turn 0: nothing is stale yet, so the expert acts
    before = set(env.admissible_actions)
    assert not env.step(expert(pool, [0])[0]).info["invalid_action"]  # the expert's move
    stale = _action(expert(pool, [0])[0])
    assert stale in before and stale not in env.admissible_actions
    assert env.step(expert(pool, [0])[0]).info["invalid_action"]


def test_a_new_episode_forgets_the_old_episodes_actions():
    pool = EnvPool("household", 1, env_options=HOUSEHOLD)
    expert = NoisyExpert(noise=0.0, stale_noise=1.0, keep_think=False)
    pool.reset([3])
    for _ in range(3):
        pool.env(0).step(expert(pool, [0])[0])
    pool.reset([4])
    assert _action(expert(pool, [0])[0]) == _action(pool.env(0).solver())


def test_noise_shares_must_be_probabilities():
    with pytest.raises(ValueError, match="stale_noise must be in"):
        NoisyExpert(noise=0.1, stale_noise=1.5)
    with pytest.raises(ValueError, match="noise \\+ stale_noise"):
        NoisyExpert(noise=0.6, stale_noise=0.6)
    with pytest.raises(ConfigError, match=r"sft\.stale_noise"):
        micro_config("sft.stale_noise=0.2", "rollout.layout=trajectory")
    with pytest.raises(ConfigError, match="add up to at most 1"):
        micro_config("sft.noise=0.7", "sft.stale_noise=0.5")


def test_sft_imitates_every_accepted_response_and_no_rejected_one(base_model):
    config = micro_config("env.options={num_receptacles: 4, num_distractors: 1, max_turns: 30}")
    model, tokenizer = load_model_and_tokenizer(base_model)
    engine = RolloutEngine(
        model,
        tokenizer,
        rollout_config(config, group_size=1, temperature=1.0),
        env_options={**config["env"]["options"], "split": "train"},
    )
    demos = collect_demonstrations(
        engine, "household", episodes=8, noise=0.0, stale_noise=0.3, seed=0, tasks_per_batch=8
    )
    engine.close()
    rejected = demos.invalid_action
    assert 0 < rejected.sum() < len(demos)
    imitated = demonstration_batch(demos).response_mask.sum(dim=1) > 0
    assert imitated.tolist() == (~rejected).tolist()
    # the expert recovers: the demonstrations still win
    assert demos.stats()["success_rate"] == 1.0
