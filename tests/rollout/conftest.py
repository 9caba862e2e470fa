"""Shared fixtures: a small embedded tokenizer and a randomly initialised tiny Qwen2."""

from __future__ import annotations

import pytest
from toyenvs import FAIL_SEED, CalcEnv, CountEnv

from spear.models.embedded import build_model
from spear.models.tokenizer import build_tokenizer
from spear.rollout.prompts import FORMAT_WITH_ADMISSIBLE, REACT_ROLE


def toy_corpus() -> list[str]:
    texts = [REACT_ROLE, FORMAT_WITH_ADMISSIBLE]
    for seed in (s for s in range(20) if s != FAIL_SEED):
        for env in (CountEnv(), CalcEnv()):
            texts.append(env.reset(seed)[0])
            for _ in range(3):
                action = env.solver()
                result = env.step(action)
                texts += [action, result.observation]
                if result.done:
                    break
    return texts


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(toy_corpus(), vocab_size=700)


@pytest.fixture(scope="session")
def model(tokenizer):
    return build_model(
        tokenizer, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128
    )
