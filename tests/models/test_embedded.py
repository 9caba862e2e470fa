"""The embedded Qwen2 model: sizes, determinism, save/load through the HF Auto classes."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from spear.models.embedded import build_model, count_parameters, create_embedded, load_model_and_tokenizer
from spear.models.tokenizer import build_tokenizer

CORPUS = ["<think>the mug is on the desk</think><action>take mug 1 from desk 1</action>"] * 40


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CORPUS, vocab_size=400)


def expected_parameters(vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, inter: int) -> int:
    """Qwen2 parameter count by hand: q/k/v projections carry biases, o/MLP do not."""
    kv = hidden // heads * kv_heads
    attention = (hidden * hidden + hidden) + 2 * (hidden * kv + kv) + hidden * hidden
    mlp = 3 * hidden * inter
    per_layer = attention + mlp + 2 * hidden  # two RMSNorm weights
    return vocab * hidden + layers * per_layer + hidden  # tied lm_head, final norm


def test_default_sizes_and_parameter_count(tok) -> None:
    model = build_model(tok)
    assert isinstance(model, Qwen2ForCausalLM)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        128,
        4,
        4,
        2,
    )
    assert cfg.intermediate_size == 384 and cfg.vocab_size == len(tok) and cfg.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert count_parameters(model) == expected_parameters(len(tok), 128, 4, 4, 2, 384)


def test_same_seed_same_weights_and_global_rng_untouched(tok) -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = build_model(tok, hidden_size=32, num_layers=1, intermediate_size=64, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_model(tok, hidden_size=32, num_layers=1, intermediate_size=64, seed=7)
    c = build_model(tok, hidden_size=32, num_layers=1, intermediate_size=64, seed=8)
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_heads": 3}, "divisible by num_heads"),
        ({"num_kv_heads": 3}, "divisible by num_kv_heads"),
        ({"num_layers": -1}, "num_layers"),
    ],
)
def test_bad_sizes_raise(tok, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(tok, **kwargs)


def test_create_embedded_saves_hf_files_that_load_back(tmp_path) -> None:
    model, tok = create_embedded(
        tmp_path, CORPUS, vocab_size=400, hidden_size=64, num_layers=2, intermediate_size=96
    )
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    auto_model = AutoModelForCausalLM.from_pretrained(tmp_path)
    auto_tok = AutoTokenizer.from_pretrained(tmp_path)
    ids = torch.tensor([auto_tok.encode("<think>x</think><action>go</action>")])
    with torch.no_grad():
        assert torch.equal(auto_model(ids).logits, model(ids).logits)
    loaded, loaded_tok = load_model_and_tokenizer(tmp_path)
    assert loaded.generation_config.eos_token_id == tok.eos_token_id
    assert loaded_tok.pad_token_id == tok.pad_token_id and not loaded.training


def test_load_sets_a_missing_pad_token_and_casts(tmp_path) -> None:
    _, tok = create_embedded(
        tmp_path, CORPUS, vocab_size=300, hidden_size=32, num_layers=1, intermediate_size=64
    )
    tok.pad_token = None
    tok.save_pretrained(tmp_path, save_jinja_files=False)
    model, loaded = load_model_and_tokenizer(tmp_path, dtype="bfloat16")
    assert loaded.pad_token == "<|im_end|>" and model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        load_model_and_tokenizer(tmp_path, dtype="float8")
