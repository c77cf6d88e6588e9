"""Prompt templates: the book's Alpaca text exactly, ChatML exactly, and the template file beside a model."""

from __future__ import annotations

import json

import pytest

from scratchlm.data.templates import (
    TEMPLATES,
    alpaca_messages,
    format_input,
    get_template,
    load_template,
    save_template,
)
from scratchlm.errors import ScratchLMError

BOOK_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def test_alpaca_is_the_books_text_with_and_without_input():
    alpaca = get_template("alpaca")
    with_input = alpaca.segments(alpaca_messages("Fix the spelling.", "freind", "friend"))
    assert "".join(text for text, _ in with_input) == (
        BOOK_PREAMBLE
        + "\n\n### Instruction:\nFix the spelling.\n\n### Input:\nfreind\n\n### Response:\nfriend"
    )
    assert with_input[-1] == ("friend", True)
    without = alpaca.segments(alpaca_messages("Name a fruit.", "", "Apple."))
    assert without == [
        (BOOK_PREAMBLE + "\n\n### Instruction:\nName a fruit.\n\n### Response:\n", False),
        ("Apple.", True),
    ]
    assert format_input("Name a fruit.") == BOOK_PREAMBLE + "\n\n### Instruction:\nName a fruit."


def test_chatml_is_exact_and_learns_each_reply_with_its_end_marker():
    chatml = get_template("chatml")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
    first_prompt = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chatml.segments(messages) == [
        (first_prompt, False),
        ("Hello!<|im_end|>\n", True),
        ("<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n", False),
        ("Paris.<|im_end|>\n", True),
    ]
    assert chatml.generation_prompt(messages[:2]) == first_prompt
    assert chatml.stop == ("<|im_end|>",)
    # an Alpaca record's input follows the instruction in a chat template
    assert chatml.generation_prompt(alpaca_messages("Fix it.", "freind")) == (
        "<|im_start|>user\nFix it.\n\nfreind<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", list(TEMPLATES))
@pytest.mark.parametrize("input_text", ["", "some context"])
def test_training_text_starts_with_the_generation_prompt(name, input_text):
    template = get_template(name)
    messages = alpaca_messages("Say yes.", input_text, "Yes.")
    segments = template.segments(messages)
    prompt = template.generation_prompt(messages[:-1])
    assert segments[0] == (prompt, False)
    assert "".join(t for t, _ in segments[1:]).startswith("Yes.")


def test_alpaca_system_message_replaces_the_preamble_and_conversations_are_refused():
    alpaca = get_template("alpaca")
    prompt = alpaca.generation_prompt(
        [{"role": "system", "content": "You are terse."}, *alpaca_messages("Hi")]
    )
    assert prompt == "You are terse.\n\n### Instruction:\nHi\n\n### Response:\n"
    two_turns = [*alpaca_messages("a", "", "b"), *alpaca_messages("c", "", "d")]
    with pytest.raises(ScratchLMError, match="chatml"):
        alpaca.segments(two_turns)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "at least one message"),
        ([{"role": "robot", "content": "x"}], "message 0"),
        ([{"role": "user", "content": 3}], "message 0"),
        ([{"role": "assistant", "content": "x"}], "needs a user message"),
        ([{"role": "user", "content": "x"}], "must end with the assistant"),
    ],
)
def test_bad_conversations_are_clear_errors(messages, message):
    with pytest.raises(ScratchLMError, match=message):
        get_template("chatml").segments(messages)


def test_template_file_travels_with_the_model(tmp_path):
    assert load_template(tmp_path) is None
    save_template(get_template("chatml"), tmp_path)
    saved = json.loads((tmp_path / "chat_template.json").read_text())
    assert saved["name"] == "chatml" and saved["stop"] == ["<|im_end|>"]
    assert load_template(tmp_path) == get_template("chatml")
    (tmp_path / "chat_template.json").write_text('{"format": "other"}')
    with pytest.raises(ScratchLMError, match="not a scratchlm chat template"):
        load_template(tmp_path)
    with pytest.raises(ScratchLMError, match="unknown template"):
        get_template("vicuna")
