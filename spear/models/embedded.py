"""The embedded default model: a tiny Qwen2 built from scratch, in HF formats.

spear runs end to end on a CPU without downloading anything: the default policy
is a randomly initialised, few-hundred-thousand to few-million parameter model of
transformers' Qwen2 architecture (the family the paper trains, spec 4.1, 4.4),
with a byte-level BPE tokenizer trained on a corpus the caller provides
(:mod:`spear.models.tokenizer`). Both are saved with ``save_pretrained``, so the
same loading path (:func:`load_model_and_tokenizer`) serves the embedded model
and real checkpoints such as Qwen2.5-1.5B-Instruct.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from spear.models.local import ModelPathError, check_model_dir
from spear.models.tokenizer import build_tokenizer

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def build_model(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 384,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 causal LM sized for ``tokenizer`` (tied embeddings).

    Initialisation draws from a private RNG seeded with ``seed``: the same
    arguments give the same weights, and the global torch RNG is left untouched.
    """
    _check_positive(
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
    )
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads ({num_heads}) must be divisible by num_kv_heads ({num_kv_heads})")
    if (hidden_size // num_heads) % 2:
        raise ValueError("hidden_size / num_heads must be even (rotary embeddings rotate pairs)")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
    )
    return model.eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def create_embedded(
    out_dir: str | Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 2048,
    number_tokens: int = 0,
    **sizes: Any,
) -> tuple[Qwen2ForCausalLM, PreTrainedTokenizerBase]:
    """Build the embedded tokenizer and model and ``save_pretrained`` both to ``out_dir``.

    ``vocab_size`` and ``number_tokens`` size the tokenizer (:func:`build_tokenizer`);
    ``sizes`` are the keyword arguments of :func:`build_model`. The directory then
    holds config.json, model.safetensors, generation_config.json, tokenizer.json
    and tokenizer_config.json (chat template inside, for older transformers).
    """
    tokenizer = build_tokenizer(
        corpus,
        vocab_size,
        model_max_length=sizes.get("max_position_embeddings", 2048),
        number_tokens=number_tokens,
    )
    model = build_model(tokenizer, **sizes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out, save_jinja_files=False)
    return model, tokenizer


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    if dtype is None:
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be a torch.dtype or one of {sorted(_DTYPES)} or 'auto', got {dtype!r}")
    return _DTYPES[dtype]


def load_model_and_tokenizer(
    path: str | Path, dtype: str | torch.dtype | None = None
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local folder (the embedded model or any HF checkpoint).

    ``dtype=None`` keeps the checkpoint's dtype. A tokenizer without a pad token
    gets its EOS token as padding (padding positions are masked everywhere). A path that
    does not exist or holds no model raises :class:`~spear.models.local.ModelPathError`
    before transformers is asked (nothing is downloaded: ``local_files_only``).
    """
    path = check_model_dir(path)
    resolved = _resolve_dtype(dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=resolved, local_files_only=True)
    except OSError as exc:  # transformers' way of saying a file is unreadable or incomplete
        raise ModelPathError(f"the model in {path} does not load: {exc}") from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer of {path} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
