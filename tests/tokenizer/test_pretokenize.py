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


def probe_encoding(pattern: str, lead: str):
    """A tiktoken Encoding over `pattern` whose only merges join `lead` with a following byte: encoding
    lead + c starts with a merged token exactly when tiktoken keeps lead and c in one chunk."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({lead.encode() + bytes([b]): 256 + b for b in range(256)})
    return tiktoken.Encoding(f"probe-{lead}", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


@pytest.mark.parametrize("name", ["gpt2", "gpt4"])
def test_letters_and_numbers_python_does_not_know_split_as_tiktoken_splits_them(name):
    """Every code point that Python's unicodedata calls unassigned but the regex module calls a letter or a
    number (assigned in Unicode 15-17): after a letter and after a digit, the reference split keeps it in the
    same chunk exactly when tiktoken does."""
    import sys
    import unicodedata

    import regex

    unknown = "".join(chr(c) for c in range(0x80, sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cn")
    candidates = regex.findall(r"[\p{L}\p{N}]", unknown)
    assert len(candidates) > 17_000  # the regex module's tables are newer than Python's
    pattern = pre.PATTERNS[name]
    for lead in ("a", "1"):
        encoding = probe_encoding(pattern, lead)
        joined = [ids[0] >= 256 for ids in encoding.encode_ordinary_batch([lead + c for c in candidates])]
        ours = [len(pre.split_text(lead + c, pattern)) == 1 for c in candidates]
        wrong = [f"U+{ord(c):04X}" for c, a, b in zip(candidates, joined, ours) if a != b]
        assert not wrong, f"{len(wrong)} code points split unlike tiktoken after {lead!r}: {wrong[:20]}"
