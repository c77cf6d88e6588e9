"""The dataloader: the book's create_dataloader_v1 with a seeded shuffle; the train/val text split."""

from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.data import loader
from scratchlm.data.loader import create_dataloader, encode_text, split_text
from scratchlm.data.windows import make_windows
from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import WordTokenizer

TEXT = (
    "I HAD always thought Jack Gisburn rather a cheap genius--though a good fellow enough--so it was no "
    "great surprise to me to hear that, in the height of his glory, he had dropped his painting, married a "
    "rich widow, and established himself in a villa on the Riviera. <|endoftext|> The height of his glory "
    "was not so very high, after all."
)


def test_doctests():
    assert doctest.testmod(loader).failed == 0


def test_batches_in_order_are_the_windows(gpt2):
    ids = gpt2.encode(TEXT, allowed_special={"<|endoftext|>"})
    batches = list(create_dataloader(TEXT, gpt2, context_length=4, stride=4, batch_size=8, shuffle=False))
    inputs, targets = make_windows(ids, 4, 4)
    assert torch.equal(torch.cat([x for x, _ in batches]), inputs[: len(batches) * 8])
    assert torch.equal(torch.cat([y for _, y in batches]), targets[: len(batches) * 8])
    assert all(x.shape == (8, 4) and x.dtype == torch.long for x, _ in batches)


def test_endoftext_in_the_text_is_the_separator_token(gpt2, tiktoken_gpt2):
    ids = encode_text(TEXT, gpt2)
    assert ids.count(50256) == 1
    assert encode_text(TEXT, tiktoken_gpt2) == ids  # the book passes a tiktoken encoding: same ids


def test_word_tokenizer_works_too():
    words = WordTokenizer.build(TEXT)
    batch = next(
        iter(create_dataloader(TEXT, words, context_length=3, stride=3, batch_size=2, shuffle=False))
    )
    assert words.decode(batch[0][0].tolist()) == "I HAD always"


def test_shuffle_is_seeded_and_reproducible():
    ids = list(range(200))

    def epochs(seed: int) -> list[list[list[int]]]:
        dl = create_dataloader(ids, context_length=4, stride=2, batch_size=5, seed=seed)
        return [[x.tolist() for x, _ in dl] for _ in range(2)]

    first, again, other = epochs(0), epochs(0), epochs(1)
    assert first == again
    assert first != other
    assert first[0] != first[1]  # each epoch draws a new order


def test_drop_last_drops_the_short_batch():
    ids = list(range(11))  # windows of 2 at stride 2 start at 0, 2, 4, 6, 8: five of them
    sizes = [
        len(x) for x, _ in create_dataloader(ids, context_length=2, stride=2, batch_size=2, shuffle=False)
    ]
    assert sizes == [2, 2]
    kept = create_dataloader(ids, context_length=2, stride=2, batch_size=2, shuffle=False, drop_last=False)
    assert [len(x) for x, _ in kept] == [2, 2, 1]


def test_too_few_windows_for_one_batch_is_an_error_not_an_empty_loader():
    with pytest.raises(ScratchLMError, match="do not fill one batch of 8"):
        create_dataloader(list(range(20)), context_length=4, stride=4, batch_size=8)
    assert (
        len(create_dataloader(list(range(20)), context_length=4, stride=4, batch_size=8, drop_last=False))
        == 1
    )


def test_text_needs_a_tokenizer():
    with pytest.raises(ScratchLMError, match="needs a tokenizer"):
        create_dataloader("some text", context_length=2, stride=2, batch_size=1)


def test_batch_size_must_be_positive():
    with pytest.raises(ScratchLMError, match="batch_size must be at least 1"):
        create_dataloader(list(range(20)), context_length=2, stride=2, batch_size=0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 80),
    context_length=st.integers(1, 6),
    stride=st.integers(1, 6),
    batch_size=st.integers(1, 7),
    seed=st.integers(0, 2**32),
)
def test_shuffled_batches_hold_every_window_once(n, context_length, stride, batch_size, seed):
    ids = torch.randint(0, 1000, (n,), generator=torch.Generator().manual_seed(seed))
    if n < context_length + 1:
        with pytest.raises(ScratchLMError):
            create_dataloader(ids, context_length=context_length, stride=stride, batch_size=batch_size)
        return
    dl = create_dataloader(
        ids, context_length=context_length, stride=stride, batch_size=batch_size, drop_last=False, seed=seed
    )
    got = [(tuple(x), tuple(y)) for xs, ys in dl for x, y in zip(xs.tolist(), ys.tolist())]
    inputs, targets = make_windows(ids, context_length, stride)
    assert sorted(got) == sorted(zip(map(tuple, inputs.tolist()), map(tuple, targets.tolist())))
    assert all(len(xs) == batch_size for xs, _ in list(dl)[:-1])


def test_split_text_is_the_books_character_split():
    train, val = split_text(TEXT, 0.9)
    cut = int(0.9 * len(TEXT))
    assert (train, val) == (TEXT[:cut], TEXT[cut:])


def test_split_text_ratio_must_be_a_fraction():
    with pytest.raises(ScratchLMError, match="train_ratio"):
        split_text(TEXT, 1.0)
