"""The actor trains the policy the rollout sampled from: softmax(logits / T) (verl's convention)."""

import pytest
import torch
from micro import make_trainer

from spear.models.embedded import load_model_and_tokenizer
from spear.trainer.actor import collate, compute_log_probs, forward_chunks, response_log_probs
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


@pytest.mark.parametrize(("temperature", "forward_tokens"), [(1.0, None), (0.6, None), (1.0, 64)])
def test_behaviour_log_probs_from_the_sampler_equal_a_recomputation_at_the_rollout_temperature(
    base_model, tmp_path, temperature, forward_tokens
):
    """Step 7 reuses the sampler's log-probs; they must be log pi_T of the drawn tokens, so the
    first update's ratio is 1 (the check verl's recompute would give)."""
    trainer = make_trainer(base_model, tmp_path, f"rollout.temperature={temperature}")
    step_batch, _ = trainer.prepare(1, {})
    update = step_batch.update
    recomputed = compute_log_probs(
        trainer.model, update, 8, temperature=temperature, forward_tokens=forward_tokens
    )
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


def _ragged_batch():
    """Prompts of 3, 2, 1, 1 tokens and responses of 4, 2, 1, 1: rows use columns 0-6, 1-4,
    2-3 and 2-3 of a [4, 7] batch whose prompt region is 3 columns wide."""
    prompts = [[5, 6, 7], [8, 9], [10], [11]]
    responses = [[12, 13, 14, 15], [16, 17], [18], [19]]
    masks = [[1] * len(r) for r in responses]
    old = [[0.0] * len(r) for r in responses]
    return collate(prompts, responses, masks, old, [1.0, -1.0, 0.5, 2.0], pad_token_id=0)


def test_forward_chunks_grow_while_rows_times_trimmed_width_fits_the_budget():
    batch = _ragged_batch()
    # budget 8: row 0 alone (width 7; with row 1, 2 x 7 = 14 > 8); rows 1-2 share columns 1-4
    # (2 x 4 = 8); adding row 3 would make 3 x 4 = 12 > 8, so it runs alone in columns 2-3
    chunks = forward_chunks(batch, 8)
    assert [c.input_ids.tolist() for c in chunks] == [
        [[5, 6, 7, 12, 13, 14, 15]],
        [[8, 9, 16, 17], [0, 10, 18, 0]],
        [[11, 19]],
    ]
    assert [c.prompt_length for c in chunks] == [3, 2, 1]
    assert [c.response_mask.shape[1] for c in chunks] == [4, 2, 1]
    assert [c.advantages[:, 0].tolist() for c in chunks] == [[1.0], [-1.0, 0.5], [2.0]]
    assert [len(c) for c in forward_chunks(batch, 100)] == [4]
    assert [len(c) for c in forward_chunks(batch, None)] == [4]
    assert [len(c) for c in forward_chunks(batch, 1)] == [1, 1, 1, 1]  # a row over the budget runs alone


def test_forward_passes_cut_by_a_token_budget_give_every_rows_value_and_gradient(base_model):
    """Long and short rows in separate forward passes: the same log-probs, entropies and
    gradients as one pass over the whole padded batch (up to float rounding)."""
    model, tokenizer = load_model_and_tokenizer(base_model)
    texts = ["go to shelf 1 and then look around the room", "look", "open drawer 2", "go"]
    prompts = [tokenizer.encode(t) for t in texts]
    responses = [tokenizer.encode(t) for t in ["<action>look</action> and more", "<action>go", "x", "y"]]
    masks = [[1] * len(r) for r in responses]
    old = [[0.0] * len(r) for r in responses]
    batch = collate(prompts, responses, masks, old, [1.0, -1.0, 0.5, 2.0], pad_token_id=0)
    weights = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    results = {}
    for budget in (None, 24):
        rows_seen: list[int] = []
        hook = model.register_forward_pre_hook(
            lambda _m, _args, kwargs, seen=rows_seen: seen.append(kwargs["input_ids"].shape[0]),
            with_kwargs=True,
        )
        log_prob, entropy = response_log_probs(model, batch, with_entropy=True, forward_tokens=budget)
        hook.remove()
        model.zero_grad()
        ((log_prob + entropy) * weights * batch.response_mask).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results[budget] = rows_seen, log_prob.detach(), entropy.detach(), grads
    assert results[None][0] == [4] and len(results[24][0]) > 1 and sum(results[24][0]) == 4
    mask = batch.response_mask.bool()
    for one, cut in zip(results[None][1:3], results[24][1:3], strict=True):
        assert one.shape == cut.shape
        torch.testing.assert_close(cut[mask], one[mask], rtol=0, atol=1e-5)
    for one, cut in zip(results[None][3], results[24][3], strict=True):
        torch.testing.assert_close(cut, one, rtol=1e-4, atol=1e-6)


def test_a_run_with_forward_passes_cut_by_tokens_samples_the_same_tokens_and_ends_with_the_same_weights(
    base_model, tmp_path
):
    """forward_tokens changes only the shapes of the update's forward passes: the same rollouts
    at every step and weights equal up to float rounding after three RL steps."""
    runs = {}
    for budget in ("null", "48"):
        trainer = make_trainer(base_model, tmp_path / budget, f"actor.forward_tokens={budget}")
        batches, collect = [], trainer.rollout

        def recording(step, collect=collect, batches=batches):
            batches.append(collect(step))
            return batches[-1]

        trainer.rollout = recording
        for step in range(1, 4):
            trainer.train_step(step)
        runs[budget] = batches, [p.detach().clone() for p in trainer.model.parameters()]
    (b_one, w_one), (b_cut, w_cut) = runs["null"], runs["48"]
    for one, cut in zip(b_one, b_cut, strict=True):
        assert torch.equal(cut.input_ids, one.input_ids) and torch.equal(cut.response_mask, one.response_mask)
    for one, cut in zip(w_one, w_cut, strict=True):
        torch.testing.assert_close(cut, one, rtol=0, atol=1e-5)
