"""The book's word tokenizer: split, vocabulary, unknown words, lossy-but-readable decoding."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import word
from scratchlm.tokenizer.word import EOT, UNK, WordTokenizer

TEXT = "It is the last he painted, you know. Mrs. Gisburn said -- with pardonable pride!"


def test_doctests():
    assert doctest.testmod(word).failed == 0


def test_build_encode_decode():
    tok = WordTokenizer.build(TEXT)
    assert tok.id_to_token[-2:] == [EOT, UNK]
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.vocab_size == len(set(word.split_words(TEXT))) + 2


def test_decoding_is_lossy_for_whitespace_as_in_the_book():
    tok = WordTokenizer.build("It's  done")
    assert tok.decode(tok.encode("It's  done")) == "It' s done"


def test_unknown_words():
    with_unk = WordTokenizer.build(TEXT)
    assert with_unk.encode("Hello, Mrs. Gisburn") == [
        with_unk.token_to_id[w] for w in (UNK, ",", "Mrs", ".", "Gisburn")
    ]
    strict = WordTokenizer.build(TEXT, unk=False)
    with pytest.raises(ScratchLMError, match="unknown word 'Hello'"):
        strict.encode("Hello")


def test_end_of_text_joins_documents():
    tok = WordTokenizer.build(["first text.", "second text."])
    ids = tok.encode(f"first text. {EOT} second text.")
    assert tok.eot_id in ids
    assert tok.decode(ids) == f"first text. {EOT} second text."


words = st.lists(st.sampled_from(["the", "cat", ",", ".", "sat", "--", "?", "!", '"', "on"]), max_size=30)


@given(words)
def test_encode_decode_encode_is_stable(ws):
    tok = WordTokenizer.build('the cat , . sat -- ? ! " on')
    text = " ".join(ws)
    ids = tok.encode(text)
    assert tok.encode(tok.decode(ids)) == ids


def test_save_load_and_errors(tmp_path):
    tok = WordTokenizer.build(TEXT)
    loaded = WordTokenizer.load(tok.save(tmp_path / "w.json"))
    assert loaded.id_to_token == tok.id_to_token
    with pytest.raises(ScratchLMError, match="no words"):
        WordTokenizer.build("   ")
    for bad in ([10_000], [-1], [1.5]):
        with pytest.raises(ScratchLMError, match="not in this tokenizer"):
            tok.decode(bad)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ScratchLMError, match="not a scratchlm word tokenizer"):
        WordTokenizer.load(tmp_path / "bad.json")
