"""tiktoken ranks files: what we write, tiktoken reads; and back."""

from __future__ import annotations

import pytest
import tiktoken
from tiktoken.load import load_tiktoken_bpe

from scratchlm.errors import ScratchLMError
from scratchlm.interop.tiktoken_file import load_tiktoken_ranks, save_tiktoken_ranks
from tests.strategies import SAMPLE_TEXT


def test_tiktoken_reads_our_file(tmp_path, gpt2, tiktoken_gpt2):
    path = save_tiktoken_ranks(gpt2, tmp_path / "gpt2.tiktoken")
    ranks = load_tiktoken_bpe(str(path))
    assert ranks == gpt2.ranks
    enc = tiktoken.Encoding("from-file", pat_str=gpt2.pattern, mergeable_ranks=ranks, special_tokens={})
    assert enc.encode(SAMPLE_TEXT) == tiktoken_gpt2.encode(SAMPLE_TEXT)
    assert path.read_text().splitlines()[0] == "IQ== 0"  # base64 of "!", rank 0


def test_round_trip(tmp_path, trained):
    path = save_tiktoken_ranks(trained, tmp_path / "t.tiktoken")
    back = load_tiktoken_ranks(path, pattern="gpt4", special_tokens=trained.special_tokens)
    assert back.ranks == trained.ranks and back.pattern == trained.pattern
    assert back.encode(SAMPLE_TEXT) == trained.encode(SAMPLE_TEXT)


def test_bad_files(tmp_path):
    with pytest.raises(ScratchLMError, match="no such file"):
        load_tiktoken_ranks(tmp_path / "none.tiktoken")
    (tmp_path / "bad.tiktoken").write_text("IQ== 0\nnot-base64!! x\n")
    with pytest.raises(ScratchLMError, match=r"bad.tiktoken:2: expected 'base64 rank'"):
        load_tiktoken_ranks(tmp_path / "bad.tiktoken")
