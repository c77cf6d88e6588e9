"""Sliding windows: exactly the book's GPTDatasetV1 loop, as tensors and as a lazy dataset."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.data import windows
from scratchlm.data.windows import WindowDataset, make_windows, window_starts
from scratchlm.errors import ScratchLMError


def book_windows(token_ids: list[int], max_length: int, stride: int) -> tuple[list, list]:
    """GPTDatasetV1.__init__ from the book (chapter 2), verbatim apart from names."""
    input_ids, target_ids = [], []
    for i in range(0, len(token_ids) - max_length, stride):
        input_ids.append(token_ids[i : i + max_length])
        target_ids.append(token_ids[i + 1 : i + max_length + 1])
    return input_ids, target_ids


def test_doctests():
    assert doctest.testmod(windows).failed == 0


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(st.integers(0, 50_000), max_size=120),
    context_length=st.integers(1, 20),
    stride=st.integers(1, 25),
)
def test_windows_are_the_books_loop(ids, context_length, stride):
    if len(ids) < context_length + 1:
        with pytest.raises(ScratchLMError, match=f"needs at least {context_length + 1} tokens"):
            make_windows(ids, context_length, stride)
        return
    inputs, targets = make_windows(ids, context_length, stride)
    expected_inputs, expected_targets = book_windows(ids, context_length, stride)
    assert inputs.tolist() == expected_inputs and targets.tolist() == expected_targets
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs.shape == (len(range(0, len(ids) - context_length, stride)), context_length)
    starts = window_starts(len(ids), context_length, stride)
    for row, start in zip(inputs.tolist(), starts):
        assert row == ids[start : start + context_length]  # each window is a slice
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the inputs shifted by one
    dataset = WindowDataset(ids, context_length, stride)
    assert len(dataset) == len(inputs)
    for i in range(len(dataset)):
        x, y = dataset[i]
        assert torch.equal(x, inputs[i]) and torch.equal(y, targets[i])


def test_stride_equal_to_context_length_neither_overlaps_nor_skips():
    ids = list(range(100, 123))  # 23 tokens, windows of 4: starts 0, 4, ..., 16
    inputs, targets = make_windows(ids, 4, 4)
    assert inputs.flatten().tolist() == ids[:20]
    assert targets.flatten().tolist() == ids[1:21]


def test_the_smallest_corpus_has_one_window():
    inputs, targets = make_windows([1, 2, 3], context_length=2, stride=5)
    assert inputs.tolist() == [[1, 2]] and targets.tolist() == [[2, 3]]


def test_make_windows_returns_tensors_of_its_own():
    ids = torch.arange(10)
    inputs, _ = make_windows(ids, 4, 1)
    inputs[0, 1] = -1  # overlapping windows must not share memory with each other or with ids
    assert inputs[1, 0] == 1 and ids[1] == 1


def test_dataset_slices_lazily_without_copying():
    ids = torch.arange(1000)
    dataset = WindowDataset(ids, context_length=16, stride=8)
    x, y = dataset[3]
    assert x.tolist() == list(range(24, 40)) and y.tolist() == list(range(25, 41))
    assert x.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_numpy_and_tensor_inputs_agree():
    ids = np.arange(50, dtype=np.uint16)
    a, b = make_windows(ids, 5, 3)
    c, d = make_windows(ids.tolist(), 5, 3)
    assert torch.equal(a, c) and torch.equal(b, d) and a.dtype == torch.long


def test_too_short_says_how_many_tokens_and_what_to_change():
    with pytest.raises(ScratchLMError) as info:
        WindowDataset([1, 2, 3, 4], context_length=4, stride=1)
    message = str(info.value)
    assert "needs at least 5 tokens" in message and "got 4" in message
    assert "smaller context_length" in message


def test_stride_must_be_positive():
    with pytest.raises(ScratchLMError, match="stride must be at least 1, got 0"):
        make_windows(list(range(10)), 4, 0)


def test_context_length_must_be_positive():
    with pytest.raises(ScratchLMError, match="context_length must be at least 1, got 0"):
        WindowDataset(list(range(10)), 0, 1)


def test_ids_must_be_one_sequence():
    with pytest.raises(ScratchLMError, match="1-D"):
        make_windows(torch.zeros(2, 10, dtype=torch.long), 4, 4)
