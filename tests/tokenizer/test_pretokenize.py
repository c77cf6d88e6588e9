"""Split patterns and chunk counting: blocks cut at safe points count exactly like the whole text."""

from __future__ import annotations

import doctest
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import pretokenize as pre
from tests.strategies import tricky_text


def test_doctests():
    assert doctest.testmod(pre).failed == 0


def test_patterns_by_name():
    assert pre.resolve_pattern("gpt2") == pre.GPT2_PATTERN
    assert pre.resolve_pattern("gpt4") == pre.GPT4_PATTERN
    assert pre.resolve_pattern(r"\w+") == r"\w+"
    with pytest.raises(ScratchLMError, match="invalid split pattern"):
        pre.resolve_pattern("[")


lines = st.lists(tricky_text, max_size=12).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(1, 64), st.sampled_from([pre.GPT2_PATTERN, pre.GPT4_PATTERN]))
def test_safe_cuts_never_change_the_chunks(text, block, pattern):
    blocks = list(pre.iter_text_blocks(text, block))
    assert "".join(blocks) == text
    assert pre.count_chunks(blocks, pattern) == pre.count_chunks([text], pattern)


@settings(max_examples=50, deadline=None)
@given(lines, st.integers(1, 64))
def test_file_blocks_equal_text_blocks(tmp_path_factory, text, block):
    path = tmp_path_factory.mktemp("blocks") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    blocks = pre.plan_blocks(path, block)
    assert "".join(pre.read_block(b) for b in blocks) == text
    assert all(a.end == b.start for a, b in pairwise(blocks))
    assert pre.count_chunks_in_files(
        [path], pre.GPT4_PATTERN, workers=1, block_bytes=block
    ) == pre.count_chunks([text], pre.GPT4_PATTERN)


def test_find_cut():
    assert pre.find_cut(b"abc\ndef") == 4
    assert pre.find_cut(b"abc\n def\nx") == 9  # not before a space, only before a printable byte
    assert pre.find_cut(b"abc\n\xe3\x80\x80x") == -1  # U+3000 is whitespace
    assert pre.find_cut(b"ab \ncd") == -1  # a cut after a whitespace run changes the chunks
    assert pre.find_cut(b"abc") == -1


def test_expand_inputs(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("b")
    (tmp_path / "sub" / "c.bin").write_bytes(b"\x00")
    assert pre.expand_inputs([tmp_path]) == [tmp_path / "a.txt", tmp_path / "sub" / "b.md"]
    assert pre.expand_inputs([str(tmp_path / "**" / "*.md")]) == [tmp_path / "sub" / "b.md"]
    with pytest.raises(ScratchLMError, match="no such file"):
        pre.expand_inputs([tmp_path / "nope.txt"])


def test_specials_are_cut_out_before_splitting():
    counts = pre.count_chunks(["x<|endoftext|>y"], pre.GPT2_PATTERN, ["<|endoftext|>"])
    assert counts == {"x": 1, "y": 1}
