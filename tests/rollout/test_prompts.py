"""Prompt builders: the ReAct turn prompt (spec 4.1) and the chat-template delta."""

from __future__ import annotations

import copy

import pytest

from spear.rollout.prompts import (
    COMPACT_FORMAT_FREE,
    COMPACT_FORMAT_WITH_ADMISSIBLE,
    FORMAT_FREE,
    FORMAT_WITH_ADMISSIBLE,
    NO_VALID_ACTION,
    admissible_line,
    history_action,
    react_followup_prompt,
    react_turn_prompt,
    render,
    template_delta,
    tool_call_messages,
)


def test_first_turn_has_no_history() -> None:
    text = react_turn_prompt(
        instruction="heat the mug", observation="You see a mug.", history=[], admissible=["take mug", "look"]
    )
    assert text == (
        "You are an agent acting in a text-based environment. Your task is to: heat the mug\n\n"
        "Current observation: You see a mug.\n\n"
        "Admissible actions: [take mug, look]\n\n" + FORMAT_WITH_ADMISSIBLE
    )


def test_later_turns_show_the_last_pairs_with_step_numbers() -> None:
    history = [("o1", "look"), ("o2", "take mug"), ("o3", NO_VALID_ACTION)]
    text = react_turn_prompt(instruction="t", observation="o4", history=history, admissible=["look"])
    assert "So far you have taken 3 step(s). Your last 2 observation(s) and action(s):" in text
    assert (
        "[Step 2] Observation: o2\nAction: take mug\n[Step 3] Observation: o3\nAction: (no valid action)"
        in text
    )
    assert "o1" not in text and "You are now at step 4. Current observation: o4" in text
    longer = react_turn_prompt(
        instruction="t", observation="o4", history=history, admissible=None, history_length=5
    )
    assert "[Step 1] Observation: o1" in longer and longer.endswith(FORMAT_FREE)
    none = react_turn_prompt(
        instruction="t", observation="o4", history=history, admissible=None, history_length=0
    )
    assert "Observation: o3" not in none and "You are now at step 4." in none


def test_admissible_actions_can_be_truncated_or_hidden() -> None:
    assert admissible_line(["a", "b", "c", "d"], 2) == "Admissible actions: [a, b, ... and 2 more]"
    assert admissible_line(["a"], 2) == "Admissible actions: [a]"
    assert admissible_line(None, None) is None
    hidden = react_turn_prompt(
        instruction="t", observation="o", history=[], admissible=["a"], show_admissible=False
    )
    assert "Admissible" not in hidden and hidden.endswith(FORMAT_FREE)
    follow = react_followup_prompt(observation="o2", step=2, admissible=["a", "b"], max_admissible=1)
    assert (
        follow
        == "You are now at step 2. Observation: o2\n\nAdmissible actions: [a, ... and 1 more]\n\n"
        + (FORMAT_WITH_ADMISSIBLE)
    )


def test_compact_style_says_the_same_with_numbered_steps() -> None:
    history = [("o1", "look"), ("o2", "take mug"), ("o3", NO_VALID_ACTION)]
    text = react_turn_prompt(
        instruction="t", observation="o4", history=history, admissible=["look"], style="compact"
    )
    assert text == (
        "Task: t\n[Step 2] o2\nAction: take mug\n[Step 3] o3\nAction: (no valid action)\n[Step 4] o4\n"
        "Admissible actions: [look]\n" + COMPACT_FORMAT_WITH_ADMISSIBLE
    )
    first = react_turn_prompt(instruction="t", observation="o1", history=[], admissible=None, style="compact")
    assert first == "Task: t\n[Step 1] o1\n" + COMPACT_FORMAT_FREE
    follow = react_followup_prompt(observation="o2", step=2, admissible=["a"], style="compact")
    assert follow == "[Step 2] o2\nAdmissible actions: [a]\n" + COMPACT_FORMAT_WITH_ADMISSIBLE
    full = react_turn_prompt(instruction="t", observation="o4", history=history, admissible=["look"])
    assert len(text) < len(full) / 2
    with pytest.raises(ValueError, match="prompt_style must be one of"):
        react_turn_prompt(instruction="t", observation="o", history=[], admissible=None, style="short")


def test_history_shows_the_parsed_action_or_a_marker() -> None:
    assert history_action("<think>hm</think><action> Take  Mug </action>") == "take mug"
    assert history_action("garbage \x00 ") == NO_VALID_ACTION
    assert history_action("") == NO_VALID_ACTION


def test_tool_call_messages_and_delta(tokenizer) -> None:
    messages = tool_call_messages("What is 2+2?", system_prompt="Be exact.")
    assert messages == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert tool_call_messages("q") == [{"role": "user", "content": "q"}]
    delta = template_delta(tokenizer, messages, "<tool_call>...", [{"role": "tool", "content": "4"}])
    expected = "<|im_end|>\n<|im_start|>user\n<tool_response>\n4\n</tool_response><|im_end|>\n"
    assert delta == expected + "<|im_start|>assistant\n"
    assert render(tokenizer, messages).endswith("<|im_start|>assistant\n")


DROPS_ASSISTANT_TURNS = (
    "{% for m in messages %}{% if m.role != 'assistant' %}{{ m.role + ': ' + m.content + '\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)


def test_a_template_that_rewrites_history_is_rejected(tokenizer) -> None:
    rewriting = copy.deepcopy(tokenizer)
    rewriting.chat_template = DROPS_ASSISTANT_TURNS
    with pytest.raises(ValueError, match="prefix-preserving"):
        template_delta(
            rewriting, [{"role": "user", "content": "q"}], "reply", [{"role": "user", "content": "o"}]
        )
