"""A byte-level BPE tokenizer with a ChatML chat template, trained on the fly.

The embedded default model (:mod:`spear.models.embedded`) needs a tokenizer that
can be built offline from a small corpus, encodes *any* text losslessly and
speaks the chat format the rollout engine renders prompts with (docs/ROLLOUT.md):

* byte-level BPE: every string, including garbage and unicode, maps to bytes
  first, so nothing is ever unknown and ``decode(encode(text)) == text``;
* special tokens ``<|endoftext|>`` (padding), ``<|im_start|>`` and
  ``<|im_end|>`` (end of a turn, the EOS token);
* the markup of both action formats (spec 4.1, 4.4) as added *non-special*
  tokens, so the model emits ``<action>`` in one step and decoding keeps it;
* optionally (``number_tokens``) the whole numbers ``0 .. number_tokens - 1`` as added
  tokens too: Qwen2's pre-tokenizer splits every digit, so without them a model copies
  a number as a run of digit tokens that each occur many times in the prompt; with
  them, as one token like a word (on math it did not lift the embedded model's cold
  start: docs/envs/math.md);
* a ChatML chat template with Hermes-style tool calling (system/user/assistant/tool
  roles, ``tools=`` rendered into the system turn, assistant ``tool_calls`` as
  ``<tool_call>`` JSON and tool results as ``<tool_response>`` blocks in a user turn).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, IM_START, IM_END)
MARKUP_TOKENS: tuple[str, ...] = (
    "<think>",
    "</think>",
    "<action>",
    "</action>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
)
_BYTE_ALPHABET = 256

# Rendered with transformers' sandboxed Jinja environment (trim_blocks and
# lstrip_blocks on), so every piece of output text is an explicit string literal.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(start=0) -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if messages and messages[0].role == 'system' -%}"
    "{{- (messages[0].content if messages[0].content is string else '') + '\\n\\n' -}}"
    "{%- set ns.start = 1 -%}"
    "{%- endif -%}"
    "{{- '# Tools\\n\\nYou can call the functions whose JSON schemas are listed between "
    "<tools> and </tools>:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nTo call a function, answer with a JSON object holding its name and "
    "arguments between <tool_call> and </tool_call>:\\n<tool_call>\\n"
    '{"name": <function name>, "arguments": <arguments as a JSON object>}'
    "\\n</tool_call><|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages[ns.start:] -%}"
    "{%- set content = message.content if message.content is string else '' -%}"
    "{%- if message.role == 'tool' -%}"
    "{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' -}}"
    "{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- elif message.role == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' + content -}}"
    "{%- for call in (message.tool_calls or []) -%}"
    "{%- set fn = call.function if call.function is defined else call -%}"
    "{%- if content or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": ' + (fn.name | tojson) + ', \"arguments\": ' -}}"
    "{%- if fn.arguments is string -%}{{- fn.arguments -}}"
    "{%- else -%}{{- fn.arguments | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif message.role == 'system' or message.role == 'user' -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- raise_exception('unknown chat role: ' + (message.role | string)) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


# Qwen2's pre-tokenisation (transformers' Qwen2Tokenizer): loading a saved model with
# AutoTokenizer rebuilds the tokenizer through that class because config.json names the
# qwen2 architecture, so training with exactly its normaliser and splitting rules keeps
# the in-memory tokenizer and every reloaded copy token-for-token identical.
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _train_bpe(corpus: Iterable[str], vocab_size: int, number_tokens: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((text for text in corpus if isinstance(text, str)), trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    # Added tokens are matched leftmost-longest before pre-tokenisation, so a digit run is cut
    # into numbers of at most len(str(number_tokens - 1)) digits from its left ("7303" ->
    # "730", "3"); a leading zero is not a number token ("007" stays "0", "0", "7"). Qwen2
    # already isolates every digit, so no other text tokenises differently, and a reloaded
    # copy (AutoTokenizer, Qwen2Tokenizer) keeps the added tokens.
    vocab = tokenizer.get_vocab()
    numbers = [str(n) for n in range(number_tokens) if str(n) not in vocab]
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in numbers])
    return tokenizer


def number_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Sorted ids of the tokens that are a whole number (the ten digits and any added numbers)."""
    vocab = tokenizer.get_vocab()
    return sorted(i for token, i in vocab.items() if tokenizer.convert_tokens_to_string([token]).isdigit())


def build_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = 2048,
    *,
    model_max_length: int = 2048,
    number_tokens: int = 0,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` and wrap it as a HF fast tokenizer.

    ``vocab_size`` counts the 256 byte symbols, the special tokens and the BPE
    merges (the markup tokens come on top, and so do the numbers ``0 ..
    number_tokens - 1`` that are not single digits already). ``save_pretrained`` writes
    ``tokenizer.json`` and ``tokenizer_config.json`` (with the chat template),
    loadable with ``AutoTokenizer.from_pretrained``.
    """
    minimum = _BYTE_ALPHABET + len(SPECIAL_TOKENS)
    if not isinstance(vocab_size, int) or vocab_size < minimum:
        raise ValueError(
            f"vocab_size must be an integer >= {minimum} (bytes + special tokens), got {vocab_size!r}"
        )
    if not isinstance(model_max_length, int) or model_max_length < 1:
        raise ValueError(f"model_max_length must be a positive integer, got {model_max_length!r}")
    if not isinstance(number_tokens, int) or isinstance(number_tokens, bool) or number_tokens < 0:
        raise ValueError(f"number_tokens must be an integer >= 0, got {number_tokens!r}")
    return PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(corpus, vocab_size, number_tokens),
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
        padding_side="left",
    )
