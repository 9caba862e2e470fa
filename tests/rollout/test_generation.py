"""The manual KV-cache decode loop: exact ids, behaviour log-probs, stop strings."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
from transformers import DynamicCache

from spear.models.embedded import build_model
from spear.rollout import generation
from spear.rollout.generation import (
    ReservedLayer,
    StaticDecoder,
    StopChecker,
    cache_argument,
    generate,
    left_pad,
    top_p_filter,
)

PROMPTS = ["The counter shows 3.", "<think>", "What is 2 * 3 + 4? Put the answer in \\boxed{}."]


def encode_all(tokenizer, texts=PROMPTS) -> list[list[int]]:
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


def forward_logprobs(model, prompt: list[int], response: list[int], transform=None) -> torch.Tensor:
    """Log-probs of ``response`` after ``prompt`` from one fresh full forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1].float()
    if transform is not None:
        logits = transform(logits)
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None]).squeeze(-1)


def test_greedy_matches_hf_generate_one_by_one_and_batched(model, tokenizer) -> None:
    prompts = encode_all(tokenizer)
    outs = generate(model, prompts, max_new_tokens=16, pad_token_id=tokenizer.pad_token_id, temperature=0.0)
    for prompt, out in zip(prompts, outs, strict=True):
        ref = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=16, eos_token_id=None, pad_token_id=0
        )
        assert out.token_ids == ref[0, len(prompt) :].tolist() and out.finish_reason == "length"
    ids, mask, _ = left_pad(prompts, tokenizer.pad_token_id, "cpu")
    ref = model.generate(
        ids, attention_mask=mask, do_sample=False, max_new_tokens=16, eos_token_id=None, pad_token_id=0
    )
    assert [o.token_ids for o in outs] == ref[:, ids.shape[1] :].tolist()


def test_eos_is_kept_and_ends_the_row(model, tokenizer) -> None:
    prompts = encode_all(tokenizer)
    free = generate(model, prompts, max_new_tokens=12, pad_token_id=0, temperature=0.0)
    # Declare the 5th greedy token of row 0 an EOS id: row 0 must stop right there.
    eos = free[0].token_ids[4]
    outs = generate(model, prompts, max_new_tokens=12, pad_token_id=0, temperature=0.0, eos_token_ids=[eos])
    first = free[0].token_ids.index(eos)
    assert outs[0].token_ids == free[0].token_ids[: first + 1] and outs[0].finish_reason == "eos"
    for free_row, row in zip(free[1:], outs[1:], strict=True):
        cut = free_row.token_ids.index(eos) + 1 if eos in free_row.token_ids else len(free_row.token_ids)
        assert row.token_ids == free_row.token_ids[:cut]


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_logprobs_equal_a_fresh_forward_pass(model, tokenizer, temperature: float, top_p: float) -> None:
    prompts = encode_all(tokenizer) * 2  # repeated prompts share one prefill
    gen = torch.Generator().manual_seed(3)
    outs = generate(
        model, prompts, max_new_tokens=20, pad_token_id=0, temperature=temperature, top_p=top_p, generator=gen
    )
    for prompt, out in zip(prompts, outs, strict=True):
        expected = forward_logprobs(model, prompt, out.token_ids)
        assert torch.allclose(torch.tensor(out.logprobs), expected, atol=1e-5)
        if temperature == 0.0:
            assert out.sampling_logprobs == [0.0] * len(out.token_ids)
        else:
            sampler = forward_logprobs(
                model, prompt, out.token_ids, lambda x: top_p_filter(x / temperature, top_p)
            )
            assert torch.allclose(torch.tensor(out.sampling_logprobs), sampler, atol=1e-5)
            assert all(math.isfinite(v) for v in out.sampling_logprobs)  # never sampled outside the nucleus


def test_sampling_is_reproducible_with_a_generator(model, tokenizer) -> None:
    prompts = encode_all(tokenizer) * 2

    def run(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        return [
            o.token_ids for o in generate(model, prompts, max_new_tokens=10, pad_token_id=0, generator=gen)
        ]

    assert run(1) == run(1) and run(1) != run(2)


def test_stop_strings_cut_at_the_completing_token(model, tokenizer) -> None:
    stops = ("e", "</")
    gen = torch.Generator().manual_seed(0)
    prompts = encode_all(tokenizer) * 4
    outs = generate(
        model, prompts, max_new_tokens=30, pad_token_id=0, stop=stops, tokenizer=tokenizer, generator=gen
    )
    assert any(o.finish_reason == "stop" for o in outs)
    for out in outs:
        text = tokenizer.decode(out.token_ids)
        before = tokenizer.decode(out.token_ids[:-1])
        assert not any(s in before for s in stops)  # nothing was generated past a stop string
        assert any(s in text for s in stops) == (out.finish_reason == "stop")


def test_per_row_budgets(model, tokenizer) -> None:
    outs = generate(model, encode_all(tokenizer), max_new_tokens=[1, 5, 3], pad_token_id=0, temperature=0.0)
    assert [len(o.token_ids) for o in outs] == [1, 5, 3]
    assert {o.finish_reason for o in outs} == {"length"}


def test_top_p_filter_by_hand() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    # Mass before each token: 0, 0.5, 0.8, 0.95. top_p=0.8 keeps the first two
    # (0.5 + 0.3 reaches 0.8); top_p=0.81 also keeps the third.
    assert torch.isinf(top_p_filter(logits, 0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(top_p_filter(logits, 0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(top_p_filter(logits, 0.01)).tolist() == [[False, True, True, True]]


def test_stop_checker_decodes_only_when_a_last_character_appears(tokenizer) -> None:
    checker = StopChecker(tokenizer, ["</action>"])
    ids = tokenizer.encode("<think>x</think><action>go</action>", add_special_tokens=False)
    assert [checker.completes(ids[: i + 1]) for i in range(len(ids))][-1]
    assert not any(checker.completes(ids[: i + 1]) for i in range(len(ids) - 1))


def test_bad_arguments(model, tokenizer) -> None:
    prompts = encode_all(tokenizer)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, prompts, max_new_tokens=0, pad_token_id=0)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, prompts, max_new_tokens=2, pad_token_id=0, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, prompts, max_new_tokens=2, pad_token_id=0, top_p=0)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], max_new_tokens=2, pad_token_id=0)
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, prompts, max_new_tokens=2, pad_token_id=0, stop=["x"])
    assert generate(model, [], max_new_tokens=2, pad_token_id=0) == []


def test_the_cache_goes_under_the_name_the_model_declares(model, tokenizer) -> None:
    class OldStyle(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=None):
            raise NotImplementedError

    assert cache_argument(OldStyle()) == "past_key_values"
    expected = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    assert cache_argument(model) == expected
    with warnings.catch_warnings():
        # transformers 5 warns on the old name and will remove it: generation must not use it.
        warnings.filterwarnings("error", message=".*past_key_values.*", category=FutureWarning)
        generate(model, encode_all(tokenizer), max_new_tokens=3, pad_token_id=0)


def test_a_peft_wrapper_is_asked_through_its_base_model(model, tokenizer) -> None:
    peft = pytest.importorskip("peft")
    fresh = build_model(
        tokenizer, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
    )
    wrapped = peft.get_peft_model(
        fresh, peft.LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    )
    assert cache_argument(wrapped) == cache_argument(model)
    assert len(generate(wrapped, encode_all(tokenizer), max_new_tokens=2, pad_token_id=0)) == len(PROMPTS)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_the_static_decoder_samples_the_eager_tokens_with_the_eager_log_probs(
    model, tokenizer, temperature: float, top_p: float
) -> None:
    """Same seed, same tokens: the static decoder samples from the live rows only, so the
    generator draws the same numbers while its rows finish at different steps."""
    prompts = encode_all(tokenizer) * 2 + encode_all(tokenizer)[:1]  # 7 rows in 8 slots
    budgets = [30, 4, 17, 30, 1, 9, 25]
    eos = [tokenizer.encode("e", add_special_tokens=False)[0]]

    def run(decode: str):
        gen = torch.Generator().manual_seed(11)
        return generate(
            model,
            prompts,
            max_new_tokens=budgets,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_ids=eos,
            temperature=temperature,
            top_p=top_p,
            stop=("</",),
            tokenizer=tokenizer,
            generator=gen,
            decode=decode,
        )

    eager, static = run("eager"), run("static")
    assert len({len(o.token_ids) for o in eager}) > 3  # rows end at different steps
    if temperature > 0:
        assert len({o.finish_reason for o in eager}) > 1  # and for different reasons
    for e, s in zip(eager, static, strict=True):
        assert (s.token_ids, s.finish_reason) == (e.token_ids, e.finish_reason)
        torch.testing.assert_close(torch.tensor(s.logprobs), torch.tensor(e.logprobs), rtol=0, atol=1e-5)
        torch.testing.assert_close(
            torch.tensor(s.sampling_logprobs), torch.tensor(e.sampling_logprobs), rtol=0, atol=1e-5
        )


def test_the_static_decoder_rounds_rows_to_a_power_of_two_and_columns_to_128(model, tokenizer) -> None:
    prompts = encode_all(tokenizer) * 2 + encode_all(tokenizer)[:1]
    with torch.no_grad():
        decoder = StaticDecoder(model, prompts, tokenizer.pad_token_id, 100, compiled=False)
    width = max(len(p) for p in prompts)
    assert decoder.rows == 8 and decoder.attention_mask.shape == (8, 128 * (1 + (width + 99) // 128))
    assert decoder.first_logits.shape[0] == 7


def test_an_unknown_decoder_is_refused(model, tokenizer) -> None:
    with pytest.raises(ValueError, match="decode must be one of"):
        generate(model, encode_all(tokenizer), max_new_tokens=2, pad_token_id=0, decode="fast")


def test_the_reserved_cache_decodes_bit_for_bit_what_a_concatenating_cache_decodes(
    model, tokenizer, monkeypatch
) -> None:
    prompts = encode_all(tokenizer) * 2
    budgets = [24, 3, 17, 24, 1, 9]

    def run() -> list:
        gen = torch.Generator().manual_seed(4)
        return generate(model, prompts, max_new_tokens=budgets, pad_token_id=0, generator=gen)

    reserved = run()
    monkeypatch.setattr(generation, "ReservedCache", lambda _reserve: DynamicCache())
    concatenated = run()
    for r, c in zip(reserved, concatenated, strict=True):
        assert r.token_ids == c.token_ids
        assert (r.logprobs, r.sampling_logprobs) == (c.logprobs, c.sampling_logprobs)  # exactly


def test_a_reserved_layer_holds_what_concatenation_holds_past_its_reserve_and_after_a_row_selection() -> None:
    layer, expected_keys, expected_values = ReservedLayer(reserve=2), [], []
    for width in (5, 1, 1, 1, 4, 1):  # the reserve of 2 runs out at the fourth update, then the room doubles
        keys, values = torch.randn(3, 2, width, 4), torch.randn(3, 2, width, 4)
        expected_keys.append(keys)
        expected_values.append(values)
        got_keys, got_values = layer.update(keys, values)
        assert torch.equal(got_keys, torch.cat(expected_keys, dim=-2))
        assert torch.equal(got_values, torch.cat(expected_values, dim=-2))
    rows = torch.tensor([2, 0])
    layer.batch_select_indices(rows)
    selected = torch.cat(expected_keys, dim=-2)[rows]
    assert torch.equal(layer.keys, selected) and layer.get_seq_length() == 13
    more = torch.randn(2, 2, 1, 4)
    assert torch.equal(layer.update(more, more)[0], torch.cat([selected, more], dim=-2))
