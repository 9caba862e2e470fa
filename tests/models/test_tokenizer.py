"""The embedded byte-level BPE tokenizer and its ChatML / Hermes chat template."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from spear.envs.actions import format_tool_call
from spear.models.tokenizer import MARKUP_TOKENS, build_tokenizer, number_token_ids

CORPUS = [
    "You are in the kitchen. <think>the apple is in the fridge</think><action>open fridge 1</action>",
    "Compute 3*7. <tool_call>\n"
    + json.dumps({"name": "code_interpreter", "arguments": {"code": "print(3*7)"}}),
    "</tool_call> <tool_response>\n21\n</tool_response> The answer is \\boxed{21}.",
] * 30

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "code_interpreter",
            "description": "Run Python code.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string"}},
                "required": ["code"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CORPUS, vocab_size=600)


@pytest.fixture(scope="module")
def number_tok():
    return build_tokenizer(CORPUS, vocab_size=600, number_tokens=1000)


# every property below holds for both: the plain tokenizer and the one with number tokens
EITHER = pytest.mark.parametrize("tokenizer_name", ["tok", "number_tok"])


# Lone surrogates cannot be UTF-8 encoded, so no decoded model output contains them.
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)


@EITHER
@settings(max_examples=200, deadline=None)
@given(text=any_text)
def test_any_text_round_trips_losslessly_up_to_nfc(request, tokenizer_name: str, text: str) -> None:
    # Qwen2 normalises to NFC before tokenising; everything else is byte-exact
    tok = request.getfixturevalue(tokenizer_name)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=False) == unicodedata.normalize("NFC", text)


def test_large_random_garbage_round_trips(tok) -> None:
    rng = random.Random(0)
    garbage = "".join(
        chr(rng.choice([rng.randrange(0, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(30_000)
    )
    garbage += "<action><think></tool_call><|im_end|>" + "汉字😀\x00\r\n\t  "
    decoded = tok.decode(tok.encode(garbage, add_special_tokens=False), skip_special_tokens=False)
    assert decoded == unicodedata.normalize("NFC", garbage)


def test_markup_tags_are_single_text_tokens(tok) -> None:
    for tag in MARKUP_TOKENS:
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1, tag
        # Added but not special: they survive skip_special_tokens, unlike <|im_end|>.
        assert tok.decode(ids, skip_special_tokens=True) == tag
    text = "<think>go</think><action>open fridge 1</action>"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids[0] == tok.convert_tokens_to_ids("<think>") and ids[-1] == tok.convert_tokens_to_ids(
        "</action>"
    )


def test_special_tokens(tok) -> None:
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.encode("<|im_start|>", add_special_tokens=False) == [tok.convert_tokens_to_ids("<|im_start|>")]
    assert tok.decode([tok.eos_token_id], skip_special_tokens=True) == ""
    assert tok.encode("hi", add_special_tokens=True) == tok.encode("hi", add_special_tokens=False)  # no BOS


def test_vocab_size_is_respected_and_validated(tok) -> None:
    assert len(tok) <= 600 + len(MARKUP_TOKENS)
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer(CORPUS, vocab_size=100)


def test_chat_template_plain_conversation(tok) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert tok.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_chat_template_renders_tools_calls_and_responses(tok) -> None:
    messages = [
        {"role": "system", "content": "Solve it."},
        {"role": "user", "content": "What is 3*7?"},
        {
            "role": "assistant",
            "content": "Let me run it.",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "code_interpreter", "arguments": {"code": "print(3*7)"}},
                }
            ],
        },
        {"role": "tool", "content": "21"},
        {"role": "tool", "content": "(no more output)"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"name": "code_interpreter", "arguments": '{"code": "1"}'}],
        },
    ]
    text = tok.apply_chat_template(messages, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    system, rest = text.split("<|im_end|>\n", 1)
    assert system.startswith("<|im_start|>system\nSolve it.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(TOOLS[0]) + "\n</tools>" in system
    assert "<tool_call>" in system and "</tool_call>" in system  # the calling instructions
    call = format_tool_call("code_interpreter", {"code": "print(3*7)"})
    assert rest == (
        "<|im_start|>user\nWhat is 3*7?<|im_end|>\n"
        f"<|im_start|>assistant\nLet me run it.\n{call}<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n21\n</tool_response>\n"
        "<tool_response>\n(no more output)\n</tool_response><|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "1"}}'
        "\n</tool_call><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_tools_without_a_system_message_open_a_system_turn(tok) -> None:
    text = tok.apply_chat_template([{"role": "user", "content": "q"}], tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\n# Tools\n") and text.endswith(
        "<|im_start|>user\nq<|im_end|>\n"
    )


def test_chat_template_is_prefix_preserving_over_tool_turns(tok) -> None:
    # The trajectory layout appends the template's text between turns to the
    # exact generated ids; that needs each rendering to extend the previous one.
    history = [{"role": "user", "content": "What is 3*7?"}]
    before = tok.apply_chat_template(history, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    reply = "<tool_call>\n{}\n</tool_call>"
    history += [{"role": "assistant", "content": reply}, {"role": "tool", "content": "21"}]
    after = tok.apply_chat_template(history, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert after.startswith(before + reply)
    assert after[len(before + reply) :] == (
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n21\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_save_and_load_round_trip(tok, tmp_path) -> None:
    tok.save_pretrained(tmp_path, save_jinja_files=False)
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}
    assert "chat_template" in json.loads((tmp_path / "tokenizer_config.json").read_text())
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<think>x</think><action>open fridge 1</action> 汉字 <|im_end|>"
    assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert (loaded.eos_token, loaded.pad_token) == (tok.eos_token, tok.pad_token)
    messages = [{"role": "user", "content": "q"}]
    assert loaded.apply_chat_template(messages, tools=TOOLS, tokenize=False) == tok.apply_chat_template(
        messages, tools=TOOLS, tokenize=False
    )


@EITHER
def test_a_saved_model_reloads_a_token_identical_tokenizer(request, tokenizer_name: str, tmp_path) -> None:
    """AutoTokenizer rebuilds the tokenizer as Qwen2Tokenizer next to a qwen2 config.json;
    it must split text exactly like the tokenizer the model was trained with (added number
    tokens included)."""
    from spear.models.embedded import build_model

    tok = request.getfixturevalue(tokenizer_name)
    build_model(
        tok, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=16
    ).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in [
        *CORPUS[:3],
        "go to armchair 1</action>",
        "you see a cabinet 12, a shelf 2.",
        "x = 3.25 * 40",
        "LCM of 165, 219, 62",
        "print(7303 - 2838 + 4777)",
        "\\boxed{748110}",
        "size 12 oz",
    ]:
        assert reloaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)


def test_number_tokens_make_whole_numbers_single_tokens(tok, number_tok) -> None:
    """Without them Qwen2's pre-tokenizer isolates every digit; with number_tokens=1000 a
    digit run is cut into numbers of up to three digits from its left, leading zeros alone."""
    assert tok.tokenize("165") == ["1", "6", "5"]
    assert number_tok.tokenize("lcm(165, 62)") == ["l", "c", "m", "(", "165", ",", "Ġ", "62", ")"]
    assert number_tok.tokenize("7303") == ["730", "3"]
    assert number_tok.tokenize("748110") == ["748", "110"]
    assert number_tok.tokenize("007") == ["0", "0", "7"]
    assert number_tok.tokenize("-12.50") == ["-", "12", ".", "50"]
    # every number below 1000 is one token, and only the digits tokenise differently
    ids = {number_tok.convert_tokens_to_ids(str(n)) for n in range(1000)}
    assert len(ids) == 1000 and all(len(number_tok.encode(str(n))) == 1 for n in range(0, 1000, 37))
    text = "You are in the kitchen. <action>open fridge 1</action>"
    assert number_tok.tokenize(text) == tok.tokenize(text)


def test_number_token_ids_are_the_digits_or_every_whole_number(tok, number_tok) -> None:
    digits = number_token_ids(tok)
    assert sorted(tok.convert_ids_to_tokens(digits)) == [str(d) for d in range(10)]
    numbers = number_token_ids(number_tok)
    assert len(numbers) == 1000 and numbers == sorted(numbers)
    assert {number_tok.convert_tokens_to_string([t]) for t in number_tok.convert_ids_to_tokens(numbers)} == {
        str(n) for n in range(1000)
    }


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True])
def test_number_tokens_are_validated(bad) -> None:
    with pytest.raises(ValueError, match="number_tokens"):
        build_tokenizer(CORPUS, vocab_size=600, number_tokens=bad)
