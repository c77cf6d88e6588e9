"""Instruction data: files, splits, encoding, and the collate's masking properties (hypothesis)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.data.instructions import (
    IGNORE_INDEX,
    Encoded,
    InstructionBatches,
    collate,
    encode_conversation,
    learns_something,
    read_conversations,
    split_conversations,
)
from scratchlm.data.templates import alpaca_messages, get_template
from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import Tokenizer

EOT = 50


# ---- the collate ---------------------------------------------------------------------------------------


@st.composite
def examples(draw):
    """Encoded examples: a prompt of >= 1 tokens, a response of >= 0, then EOT; the text itself may hold
    the EOT id (the mask must go by position, not by value)."""
    n = draw(st.integers(1, 5))
    out = []
    for _ in range(n):
        prompt = draw(st.lists(st.integers(0, EOT), min_size=1, max_size=12))
        response = draw(st.lists(st.integers(0, EOT), max_size=12))
        ids = (*prompt, *response, EOT)
        out.append(Encoded(ids, (False,) * len(prompt) + (True,) * (len(response) + 1)))
    return out


@settings(max_examples=300, deadline=None)
@given(batch=examples(), allowed=st.one_of(st.none(), st.integers(1, 20)), mask_prompt=st.booleans())
def test_collate_properties(batch, allowed, mask_prompt):
    inputs, targets = collate(batch, EOT, allowed, mask_prompt)
    longest = max(len(e.ids) for e in batch)
    width = longest - 1 if allowed is None else min(longest - 1, allowed)
    assert inputs.shape == targets.shape == (len(batch), width)
    assert inputs.dtype == targets.dtype == torch.long
    for row, e in enumerate(batch):
        x, y = inputs[row].tolist(), targets[row].tolist()
        n = min(len(e.ids) - 1, width)  # real targets of this row
        assert x[:n] == list(e.ids[:n]) and all(t == EOT for t in x[n:])  # padded with end-of-text
        assert all(t == IGNORE_INDEX for t in y[n:])  # padding after the first end-of-text: masked
        for j in range(n):
            learned = e.is_response[j + 1] or not mask_prompt  # prompt masked iff asked
            assert y[j] == (e.ids[j + 1] if learned else IGNORE_INDEX)
            if learned and j + 1 < n:
                assert y[j] == x[j + 1]  # targets are the inputs shifted by one
        if len(e.ids) - 2 < width:  # the example's own end-of-text is a target
            assert y[len(e.ids) - 2] == EOT


def book_collate(batch: list[list[int]], pad: int, allowed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's custom_collate_fn, restated: append one pad, pad to the longest, shift, then mask every
    pad target but the first *by value*, then truncate."""
    longest = max(len(item) + 1 for item in batch)
    xs, ys = [], []
    for item in batch:
        row = [*item, pad] + [pad] * (longest - len(item) - 1)
        x, y = torch.tensor(row[:-1]), torch.tensor(row[1:])
        pads = torch.nonzero(y == pad).squeeze(1)
        if pads.numel() > 1:
            y[pads[1:]] = IGNORE_INDEX
        xs.append(x[:allowed] if allowed else x)
        ys.append(y[:allowed] if allowed else y)
    return torch.stack(xs), torch.stack(ys)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(st.lists(st.integers(0, EOT - 1), min_size=1, max_size=15), min_size=1, max_size=5),
    allowed=st.one_of(st.none(), st.integers(1, 20)),
)
def test_collate_equals_the_books_when_the_text_holds_no_end_of_text(items, allowed):
    batch = [Encoded((*item, EOT), (False,) * len(item) + (True,)) for item in items]
    ours = collate(batch, EOT, allowed)
    book = book_collate(items, EOT, allowed)
    assert torch.equal(ours[0], book[0]) and torch.equal(ours[1], book[1])


def test_learns_something_follows_truncation():
    e = Encoded((1, 2, 3, 4, EOT), (False, False, False, True, True))
    assert learns_something(e, 3)  # target 2 predicts token 3, a response token
    assert not learns_something(e, 2)
    assert collate([e], EOT, 2, mask_prompt=True)[1].eq(IGNORE_INDEX).all()


# ---- batches -------------------------------------------------------------------------------------------


def test_batches_cover_each_epoch_and_resume_exactly():
    batch = [Encoded((i, i + 1, EOT), (False, True, True)) for i in range(10)]
    data = InstructionBatches(batch, EOT, seed=3)
    first_epoch = torch.cat([data.get_batch(5)[0][:, 0] for _ in range(2)]).tolist()
    assert sorted(first_epoch) == list(range(10))
    state = json.loads(json.dumps(data.state_dict()))  # a checkpoint stores it as JSON
    expected = [data.get_batch(4)[0].tolist() for _ in range(3)]
    again = InstructionBatches(batch, EOT, seed=99)
    again.load_state_dict(state)
    assert [again.get_batch(4)[0].tolist() for _ in range(3)] == expected
    assert sum(len(x) for x, _ in data.iter_sequential(4)) == 10


# ---- files, splits, encoding ---------------------------------------------------------------------------


def test_reads_alpaca_json_jsonl_and_chat_messages(tmp_path):
    records = [
        {"instruction": "Say hi.", "input": "", "output": "Hi."},
        {"instruction": "Add.", "output": "2"},
    ]
    (tmp_path / "a.json").write_text(json.dumps(records))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    expected = [alpaca_messages("Say hi.", "", "Hi."), alpaca_messages("Add.", "", "2")]
    assert read_conversations(tmp_path / "a.json") == expected
    assert read_conversations(tmp_path / "a.jsonl") == expected
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    (tmp_path / "chat.jsonl").write_text(json.dumps(chat) + "\n")
    assert read_conversations(tmp_path / "chat.jsonl") == [chat["messages"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no records"),
        ("[1, 2", "not valid JSON"),
        ('{"instruction": "x", "output": "y"}\nnot json\n', "line 2"),
        ('[{"instruction": "x"}]', "record 1"),
        ('[{"instruction": "x", "output": 3}]', "record 1"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "must end with the assistant"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, text, message):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(ScratchLMError, match=message):
        read_conversations(tmp_path / "bad.json")


def test_split_is_the_books_portions_and_seeded():
    items = list(range(1100))
    train, val, test = split_conversations(items, seed=None)
    assert (train, test, val) == (items[:935], items[935:1045], items[1045:])  # the book's 935/110/55
    a = split_conversations(items, seed=1)
    assert a == split_conversations(items, seed=1) and a != split_conversations(items, seed=2)
    assert sorted(a[0] + a[1] + a[2]) == items
    with pytest.raises(ScratchLMError, match="sum to 1"):
        split_conversations(items, (0.5, 0.1, 0.1))


def test_encoding_marks_the_reply_and_ends_with_end_of_text(gpt2: Tokenizer):
    template = get_template("alpaca")
    messages = alpaca_messages("Name a fruit.", "", "Apple <|endoftext|>")
    e = encode_conversation(template, gpt2, messages)
    prompt_ids = gpt2.encode_ordinary(template.generation_prompt(messages[:-1]))
    reply_ids = gpt2.encode_ordinary("Apple <|endoftext|>")  # typed text stays text
    assert e.ids == (*prompt_ids, *reply_ids, gpt2.eot_id)
    assert e.is_response == (False,) * len(prompt_ids) + (True,) * (len(reply_ids) + 1)
    assert gpt2.decode(e.ids[:-1]) == "".join(t for t, _ in template.segments(messages))
