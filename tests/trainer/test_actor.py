"""The actor trains the policy the rollout sampled from: softmax(logits / T) (verl's convention)."""

import pytest
import torch
from micro import make_trainer

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.actor import collate, compute_log_probs, response_log_probs
from spear.trainer.config import ConfigError, load_config


def _batch(tokenizer):
    prompts = [tokenizer.encode("go to shelf 1"), tokenizer.encode("look")]
    responses = [tokenizer.encode("<action>look</action>"), tokenizer.encode("<action>go")]
    masks = [[1] * len(r) for r in responses]
    old = [[0.0] * len(r) for r in responses]
    return collate(prompts, responses, masks, old, [1.0, -1.0], pad_token_id=0)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 1.7])
def test_response_log_probs_are_those_of_the_tempered_policy(base_model, temperature):
    model, tokenizer = load_model_and_tokenizer(base_model)
    batch = _batch(tokenizer)
    log_prob, entropy = response_log_probs(model, batch, temperature=temperature, with_entropy=True)
    with torch.no_grad():
        logits = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
        ).logits
    p, r = batch.prompt_length, batch.response_mask.shape[1]
    by_hand = torch.log_softmax(logits[:, p - 1 : p + r - 1] / temperature, dim=-1)
    targets = batch.input_ids[:, p : p + r]
    expected = by_hand.gather(-1, targets[..., None]).squeeze(-1)
    mask = batch.response_mask.bool()
    torch.testing.assert_close(log_prob[mask], expected[mask], rtol=0, atol=1e-5)
    expected_entropy = -(by_hand.exp() * by_hand).sum(-1)
    torch.testing.assert_close(entropy[mask], expected_entropy[mask], rtol=0, atol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_behaviour_log_probs_from_the_sampler_equal_a_recomputation_at_the_rollout_temperature(
    base_model, tmp_path, temperature
):
    """Step 7 reuses the sampler's log-probs; they must be log pi_T of the drawn tokens, so the
    first update's ratio is 1 (the check verl's recompute would give)."""
    trainer = make_trainer(base_model, tmp_path, f"rollout.temperature={temperature}")
    step_batch, _ = trainer.prepare(1, {})
    update = step_batch.update
    recomputed = compute_log_probs(trainer.model, update, 8, temperature=temperature)
    mask = update.response_mask.bool()
    torch.testing.assert_close(update.old_log_prob[mask], recomputed[mask], rtol=0, atol=2e-4)


def test_a_temperature_the_trainer_cannot_train_at_is_refused():
    with pytest.raises(ConfigError, match=r"rollout\.temperature"):
        load_config("spear", ["rollout.temperature=0"])
    with pytest.raises(ConfigError, match="recompute_old_log_prob"):
        load_config("spear", ["rollout.top_p=0.9"])
    config = load_config("spear", ["rollout.top_p=0.9", "actor.recompute_old_log_prob=true"])
    assert config["rollout"]["top_p"] == 0.9


def test_repeated_rows_take_one_forward_pass_and_keep_every_copys_value_and_gradient(base_model):
    """Copies of a task often repeat a turn token for token; each distinct row is computed once."""
    model, tokenizer = load_model_and_tokenizer(base_model)
    batch = _batch(tokenizer).select(torch.tensor([0, 1, 0, 0]))
    rows_seen = []
    hook = model.register_forward_pre_hook(
        lambda _m, _args, kwargs: rows_seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    log_prob, entropy = response_log_probs(model, batch, with_entropy=True)
    hook.remove()
    assert rows_seen == [2]
    weights = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    (log_prob * weights * batch.response_mask).sum().backward()
    together = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for i in range(len(batch)):
        row = batch.slice(i, i + 1)
        alone, alone_entropy = response_log_probs(model, row, with_entropy=True)
        width = row.response_mask.shape[1]
        mask = row.response_mask.bool()
        torch.testing.assert_close(alone[mask], log_prob[i : i + 1, :width][mask], rtol=0, atol=1e-5)
        torch.testing.assert_close(alone_entropy[mask], entropy[i : i + 1, :width][mask], rtol=0, atol=1e-5)
        (alone * weights[i] * row.response_mask).sum().backward()
    for summed, by_row in zip(together, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(summed, by_row, rtol=1e-4, atol=1e-6)
