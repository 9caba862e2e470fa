"""Smoke test: the engine on the built-in environments (those present in this checkout)."""

from __future__ import annotations

import pytest
import torch

import spear.envs
from spear.rollout import RolloutConfig, RolloutEngine


def available(name: str) -> bool:
    try:
        spear.envs.make(name).close()
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "layout"), [("household", "turn"), ("math", "trajectory"), ("math", "turn")]
)
def test_engine_plays_a_builtin_env(model, tokenizer, name: str, layout: str) -> None:
    if not available(name):
        pytest.skip(f"spear.envs.{name} is not in this checkout yet")
    config = RolloutConfig(group_size=2, max_turns=2, max_new_tokens=16, layout=layout)
    engine = RolloutEngine(model, tokenizer, config)
    try:
        batch = engine.collect(name, [0, 1], step=3)
        again = engine.collect(name, [0, 1], step=4)  # the pool made from the name is reused
        assert len(engine._pools) == 1
    finally:
        engine.close()
    assert len(batch.trajectories) == len(again.trajectories) == 4
    assert not any(t.failed for t in batch.trajectories)
    assert all(t.turns >= 1 for t in batch.trajectories)
    first = [batch.anchor_obs[t.rows[0]] for t in batch.trajectories]
    assert first[0] == first[1] and first[2] == first[3] and first[0] != first[2]
    mask = batch.response_mask.bool()
    with torch.no_grad():
        logits = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
        ).logits
    logp = torch.log_softmax(logits[:, batch.prompt_length - 1 : -1].float(), -1)
    fresh = logp.gather(-1, batch.responses[:, :, None]).squeeze(-1)
    assert torch.allclose(batch.old_log_prob[mask], fresh[mask], atol=1e-4)
