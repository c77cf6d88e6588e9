"""Split patterns and pure chunk counting."""

from __future__ import annotations

import doctest

import pytest

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import pretokenize as pre


def test_doctests():
    assert doctest.testmod(pre).failed == 0


def test_patterns_by_name():
    assert pre.resolve_pattern("gpt2") == pre.GPT2_PATTERN
    assert pre.resolve_pattern("gpt4") == pre.GPT4_PATTERN
    assert pre.resolve_pattern(r"\w+") == r"\w+"
    with pytest.raises(ScratchLMError, match="invalid split pattern"):
        pre.resolve_pattern("[")
    with pytest.raises(ScratchLMError, match="capturing groups"):
        pre.resolve_pattern(r"(a)|(b)|\s")


def test_specials_are_cut_out_before_splitting():
    counts = pre.count_chunks(["x<|endoftext|>y"], pre.GPT2_PATTERN, ["<|endoftext|>"])
    assert counts == {"x": 1, "y": 1}
