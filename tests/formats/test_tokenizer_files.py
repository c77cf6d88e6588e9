"""`load_tokenizer` finds a tokenizer in any supported file or directory; `save_tokenizer` writes all."""

from __future__ import annotations

import shutil

import pytest

from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import OWN_FILE, load_tokenizer, save_tokenizer
from scratchlm.tokenizer import Tokenizer, WordTokenizer
from scratchlm.tokenizer.gpt2 import gpt2_files


def test_save_writes_every_format_and_each_loads(tmp_path, trained):
    save_tokenizer(trained, tmp_path / "tok")
    names = sorted(p.name for p in (tmp_path / "tok").iterdir())
    assert names == sorted([OWN_FILE, "tokenizer.json", "tokenizer_config.json", f"{trained.name}.tiktoken"])
    for spec in (tmp_path / "tok", tmp_path / "tok" / OWN_FILE, tmp_path / "tok" / "tokenizer.json"):
        assert load_tokenizer(spec).ranks == trained.ranks
    ranks_file = tmp_path / "tok" / f"{trained.name}.tiktoken"
    assert load_tokenizer(ranks_file, pattern="gpt4").encode("hi there") == trained.encode("hi there")
    with pytest.raises(ScratchLMError, match="holds ranks only"):
        load_tokenizer(ranks_file)


def test_gpt2_by_name_and_by_data_gym_directory(tmp_path, gpt2):
    assert load_tokenizer("gpt2") is gpt2 or load_tokenizer("gpt2").ranks == gpt2.ranks
    encoder, bpe = gpt2_files()
    shutil.copy(encoder, tmp_path)
    shutil.copy(bpe, tmp_path)
    assert load_tokenizer(tmp_path).ranks == gpt2.ranks
    hf_names = tmp_path / "hf"
    hf_names.mkdir()
    shutil.copy(encoder, hf_names / "vocab.json")  # GPT2Tokenizer's names for the same two files
    shutil.copy(bpe, hf_names / "merges.txt")
    assert load_tokenizer(hf_names).ranks == gpt2.ranks


def test_word_tokenizer(tmp_path):
    tok = WordTokenizer.build("a b c")
    save_tokenizer(tok, tmp_path)
    assert isinstance(load_tokenizer(tmp_path), WordTokenizer)


def test_errors(tmp_path):
    with pytest.raises(ScratchLMError, match="no such tokenizer"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ScratchLMError, match=r"no scratchlm_tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ScratchLMError, match="not a tokenizer file"):
        load_tokenizer(tmp_path / "x.json")
    (tmp_path / "y.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ScratchLMError, match="not a JSON file"):
        load_tokenizer(tmp_path / "y.json")
    (tmp_path / "file").write_text("")
    with pytest.raises(ScratchLMError, match="not a directory"):
        save_tokenizer(Tokenizer.gpt2(), tmp_path / "file")
