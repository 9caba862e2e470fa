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


MATH = {
    "tasks": ["gcd", "lcm"],
    "max_turns": 4,
    "question_in_sandbox": True,
    "code_answers": True,
    "split": "train",
}


def test_a_tool_shy_episode_answers_in_its_head_and_the_others_call_the_tool():
    pool = EnvPool("math", 64, env_options=MATH)
    pool.reset(list(range(64)))
    expert = NoisyExpert(noise=0.0, tool_shy=0.75)
    first = expert(pool, list(range(64)))
    shy = [text for text in first if "<tool_call>" not in text]
    # the draw is per episode: 75% of 64 is 48, and a binomial(64, 0.75) falls in 37-58 with p > 0.999
    assert 37 <= len(shy) <= 58
    for slot, text in enumerate(first):
        result = pool.env(slot).step(text)
        if "<tool_call>" in text:  # code_answers: the expert's program prints the boxed answer and wins
            assert result.done and result.info["won"] and result.info["tool_calls"] == 1
        else:  # the demonstrator answers in its head, and right; the tool is never called
            assert result.done and result.info["won"] and result.info["tool_calls"] == 0
            assert text.startswith("I can answer this without the tool.")


def test_tool_shy_keeps_its_decision_for_the_whole_episode():
    options = {**MATH, "code_answers": False}  # the expert then needs two turns: call, then copy
    pool = EnvPool("math", 16, env_options=options)
    pool.reset(list(range(16)))
    expert = NoisyExpert(noise=0.0, tool_shy=0.5, seed=3)
    first = expert(pool, list(range(16)))
    callers = [slot for slot, text in enumerate(first) if "<tool_call>" in text]
    assert 0 < len(callers) < 16
    for slot in callers:
        assert not pool.env(slot).step(first[slot]).done
    second = expert(pool, callers)
    assert all(text.startswith("The program printed the answer.") for text in second)


def test_tool_shy_needs_an_environment_with_a_tool_free_answer():
    pool = EnvPool("household", 1, env_options=HOUSEHOLD)
    pool.reset([3])
    with pytest.raises(
        ValueError, match=r"sft\.tool_shy > 0 needs an environment with a tool-shy answer; household"
    ):
        NoisyExpert(noise=0.0, tool_shy=0.5)(pool, [0])
    assert NoisyExpert(noise=0.0)(pool, [0])  # without tool_shy household demonstrates as before
    with pytest.raises(ValueError, match="tool_shy must be in"):
        NoisyExpert(noise=0.0, tool_shy=-0.1)
    with pytest.raises(ConfigError, match=r"sft\.tool_shy"):
        micro_config("sft.tool_shy=1.5")
