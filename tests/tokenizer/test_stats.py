"""Compression statistics."""

from __future__ import annotations

import doctest

from scratchlm.tokenizer import stats


def test_doctests():
    assert doctest.testmod(stats).failed == 0


def test_measure_counts(gpt2):
    s = stats.measure(gpt2, ["hello world", "hello"])
    assert (s.n_bytes, s.n_chars, s.n_tokens, s.n_distinct) == (16, 16, 3, 2)
    assert s.top[0] == (31373, 2)
    assert s.vocab_usage == 2 / 50257
    assert s.chars_per_token == 16 / 3


def test_empty_text(gpt2):
    s = stats.measure(gpt2, [""])
    assert s.n_tokens == 0 and s.bytes_per_token == 0.0
