"""Reading corpora: inputs to files, files to blocks at verified cuts, counting in processes. Counting
blocks must give exactly the counts of the whole text, for any pattern and any text."""

from __future__ import annotations

import doctest
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import corpus
from scratchlm.tokenizer.pretokenize import GPT2_PATTERN, GPT4_PATTERN, count_chunks
from tests.strategies import tricky_text

PATTERNS = [GPT2_PATTERN, GPT4_PATTERN, r"\p{L}+|\s+|[^\s\p{L}]+", r"\S+\s*"]


def test_doctests():
    assert doctest.testmod(corpus).failed == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(tricky_text, max_size=12),
    st.sampled_from(["\n", "\r\n", " ", "\n\n"]),
    st.integers(1, 64),
    st.sampled_from(PATTERNS),
)
def test_text_blocks_never_change_the_chunks(parts, joiner, block, pattern):
    text = joiner.join(parts)
    blocks = list(corpus.iter_text_blocks(text, block, [pattern]))
    assert "".join(blocks) == text
    assert count_chunks(blocks, pattern) == count_chunks([text], pattern)


@settings(max_examples=60, deadline=None)
@given(st.lists(tricky_text, max_size=12), st.sampled_from(["\n", "\r\n", " "]), st.integers(1, 64))
def test_file_blocks_never_change_the_chunks(tmp_path_factory, parts, joiner, block):
    text = joiner.join(parts)
    path = tmp_path_factory.mktemp("blocks") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    blocks = corpus.plan_blocks(path, block)
    assert "".join(corpus.read_block(b) for b in blocks) == text
    assert all(a.end == b.start for a, b in pairwise(blocks))
    for pattern in (GPT2_PATTERN, GPT4_PATTERN):
        counted = corpus.count_chunks_in_files([path], pattern, workers=1, block_bytes=block)
        assert counted == count_chunks([text], pattern)


def test_crlf_and_single_line_files_are_cut_exactly(tmp_path):
    crlf = "".join(f"line {i} = value\r\n        indented {i}\r\n" for i in range(3000))
    (tmp_path / "crlf.txt").write_bytes(crlf.encode())
    one_line = " ".join(f"word{i}" for i in range(20000))
    (tmp_path / "one.txt").write_bytes(one_line.encode())
    for name, text in (("crlf.txt", crlf), ("one.txt", one_line)):
        for pattern in (GPT2_PATTERN, GPT4_PATTERN):
            assert len(corpus.plan_blocks(tmp_path / name, 4096, [pattern])) > 10  # really cut
            counted = corpus.count_chunks_in_files([tmp_path / name], pattern, workers=1, block_bytes=4096)
            assert counted == count_chunks([text], pattern)


def test_no_cut_inside_a_special_token(tmp_path):
    text = ("abc <|endoftext|> def\n" * 500).replace("|endoftext|", "|end\noftext|")
    path = tmp_path / "s.txt"
    path.write_text(text)
    specials = ["<|end\noftext|>"]
    counted = corpus.count_chunks_in_files(
        [path], GPT2_PATTERN, workers=1, block_bytes=100, specials=specials
    )
    assert counted == count_chunks([text], GPT2_PATTERN, specials)


def test_expand_inputs(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("b")
    (tmp_path / "sub" / "c.bin").write_bytes(b"\x00")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.txt").write_text("hidden")
    assert corpus.expand_inputs([tmp_path]) == [tmp_path / "a.txt", tmp_path / "sub" / "b.md"]
    assert corpus.expand_inputs([str(tmp_path / "**" / "*.md")]) == [tmp_path / "sub" / "b.md"]
    assert corpus.expand_inputs([tmp_path / "a.txt", tmp_path, tmp_path / "a.txt"]) == [
        tmp_path / "a.txt",
        tmp_path / "sub" / "b.md",
    ]
    assert corpus.expand_inputs(tmp_path / "a.txt") == [tmp_path / "a.txt"]
    with pytest.raises(ScratchLMError, match="no such file"):
        corpus.expand_inputs([tmp_path / "nope.txt"])


def test_parallel_counting_of_many_small_texts(monkeypatch, stdlib_text):
    texts = stdlib_text.splitlines(keepends=True)
    monkeypatch.setattr(corpus, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(corpus, "BLOCK_BYTES", 50_000)
    parallel = corpus.count_chunks_in_texts(texts, GPT4_PATTERN, workers=2)
    assert parallel == count_chunks(texts, GPT4_PATTERN)
    with pytest.raises(ScratchLMError, match="workers must be at least 1"):
        corpus.count_chunks_in_texts(texts, GPT4_PATTERN, workers=0)


def test_parallel_counting_of_files(monkeypatch, tmp_path, stdlib_text):
    (tmp_path / "a.txt").write_text(stdlib_text)
    monkeypatch.setattr(corpus, "PARALLEL_MIN_BYTES", 0)
    progress = []
    counted = corpus.count_chunks_in_files(
        [tmp_path / "a.txt"], GPT2_PATTERN, workers=2, block_bytes=50_000, on_progress=progress.append
    )
    assert counted == count_chunks([stdlib_text], GPT2_PATTERN)
    assert sum(progress) == len(stdlib_text.encode()) and len(progress) > 5
