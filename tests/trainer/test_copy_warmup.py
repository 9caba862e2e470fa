"""Copy warm-up: sequences whose second part repeats a span of the first, and the loss on it."""

import math

import pytest
import torch
from micro import TINY_MODEL, micro_config

from spear.trainer.actor import UpdateBatch
from spear.trainer.config import ConfigError
from spear.trainer.copy_warmup import COPY_SPAN, copy_examples, copy_warmup
from spear.trainer.run import setup_model

CONTEXT = 64


def test_every_masked_position_predicts_the_token_that_followed_it_in_the_window():
    # rows count upwards, so the token after v is v + 1 wherever v sits in the window
    rows = [torch.arange(100, 300), torch.arange(1000, 1070)]
    input_ids, loss_mask = copy_examples(rows, 64, torch.Generator().manual_seed(0), context=CONTEXT)
    assert input_ids.shape == loss_mask.shape == (64, CONTEXT + COPY_SPAN[1])
    for ids, mask in zip(input_ids, loss_mask, strict=True):
        window, tail = ids[:CONTEXT], ids[CONTEXT:]
        assert torch.equal(window, torch.arange(int(window[0]), int(window[0]) + CONTEXT))
        assert int(tail[0]) in window.tolist()  # the cue comes from the window
        positions = mask.nonzero().flatten()
        assert positions[0] == CONTEXT  # the cue's position predicts the first copied token
        assert COPY_SPAN[0] - 1 <= len(positions) <= COPY_SPAN[1] - 1
        assert torch.equal(positions, torch.arange(CONTEXT, CONTEXT + len(positions)))
        assert torch.equal(ids[positions + 1], ids[positions] + 1)
        assert not mask[:CONTEXT].any()


def test_random_numbers_replace_every_number_token_and_the_span_copies_the_replacement():
    # ids 500..599 play the number tokens; every third token of each row is one of them
    numbers = torch.arange(500, 600)
    rows = [torch.arange(100, 300).masked_fill(torch.arange(200) % 3 == 0, 500) for _ in range(4)]
    generator = torch.Generator().manual_seed(0)
    input_ids, loss_mask = copy_examples(rows, 64, generator, context=CONTEXT, number_ids=numbers)
    windows = input_ids[:, :CONTEXT]
    is_number = torch.isin(windows, numbers)
    assert torch.equal(is_number, windows >= 500)  # numbers stay numbers, other tokens stay
    assert len(windows[is_number].unique()) > 90  # drawn from all of them, not the one 500
    for ids, mask in zip(input_ids, loss_mask, strict=True):
        span = ids[CONTEXT : CONTEXT + int(mask.sum()) + 1]  # the cue and the copied tokens
        window = ids[:CONTEXT].tolist()
        assert any(window[at : at + len(span)] == span.tolist() for at in range(CONTEXT))


def _demonstrations(rows: int, length: int, vocab: int) -> UpdateBatch:
    """Left-padded token rows (real length ``length``) in the shape SFT receives them."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (rows, length + 8), generator=g)
    mask = torch.ones_like(ids)
    mask[:, :8] = 0
    ids[:, :8] = 0
    zeros = torch.zeros(rows, 4)
    return UpdateBatch(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(1) - 1).clamp(min=0),
        prompt_length=length + 4,
        response_mask=zeros,
        old_log_prob=zeros,
        advantages=zeros,
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    config = micro_config(*TINY_MODEL, "model.init=scratch", "sft.enabled=false")
    model, _ = setup_model(config, tmp_path_factory.mktemp("copy"), quiet=True)
    return model


def test_the_model_learns_to_copy(tiny_model):
    # tokens drawn uniformly from 297 ids: a model that does not copy cannot beat ln(297) nats
    losses = copy_warmup(tiny_model, _demonstrations(32, 96, 300), steps=120, lr=3e-3, context=CONTEXT)
    assert len(losses) == 120
    assert sum(losses[-10:]) / 10 < math.log(297) - 0.2


def test_bad_arguments_name_the_problem(tiny_model):
    with pytest.raises(ValueError, match="at least copy_context=64 tokens"):
        copy_warmup(tiny_model, _demonstrations(4, CONTEXT - 1, 300), steps=1, lr=1e-3, context=CONTEXT)
    with pytest.raises(ValueError, match="steps, context and lr must be positive"):
        copy_warmup(tiny_model, _demonstrations(4, 96, 300), steps=0, lr=1e-3, context=CONTEXT)
    with pytest.raises(ConfigError, match=r"sft\.copy_steps"):
        micro_config("sft.copy_steps=-1")
    with pytest.raises(ConfigError, match=r"sft\.copy_random_numbers"):
        micro_config("sft.copy_random_numbers=3")


def test_a_cold_start_with_copy_warmup_reports_it(tmp_path, capsys):
    config = micro_config(
        *TINY_MODEL,
        "model.init=scratch",
        "sft.copy_steps=3",
        "sft.copy_context=32",
        "sft.copy_random_numbers=true",
    )
    setup_model(config, tmp_path)
    assert "copy warm-up: 3 steps, final loss" in capsys.readouterr().out
    assert (tmp_path / "sft_model" / "model.safetensors").is_file()
