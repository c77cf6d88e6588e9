"""`Tokenizer`: GPT-2 ids equal tiktoken's byte for byte, reference == fast, round trips, special tokens,
decoding policy, and our JSON format."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import EOT, DisallowedSpecialTokenError, StreamDecoder, Tokenizer
from tests.strategies import SAMPLE_TEXT, tricky_text

# ---- GPT-2 is exact ----------------------------------------------------------------------------------


def test_gpt2_known_vectors(gpt2):
    # Vectors from tiktoken's own tests.
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode("hello <|endoftext|>", allowed_special="all") == [31373, 220, 50256]
    assert gpt2.encode("0" * 8) == [8269]
    assert gpt2.encode("0" * 16) == [25645]
    assert gpt2.vocab_size == 50257 and gpt2.eot_id == 50256


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_gpt2_matches_tiktoken_on_real_text(gpt2, tiktoken_gpt2, stdlib_text, method):
    text = stdlib_text[:150_000] + SAMPLE_TEXT
    assert gpt2.encode(text, method=method) == tiktoken_gpt2.encode_ordinary(text)


@settings(max_examples=300, deadline=None)
@given(tricky_text)
def test_gpt2_matches_tiktoken_on_any_unicode(gpt2, tiktoken_gpt2, text):
    expected = tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.encode_ordinary(text, method="fast") == expected
    assert gpt2.encode_ordinary(text, method="reference") == expected


def test_gpt2_long_repeats_do_not_blow_up(gpt2, tiktoken_gpt2):
    text = "^" * 100_000 + " " * 5000 + "a" * 3000
    assert gpt2.encode(text) == tiktoken_gpt2.encode(text)


# ---- round trips -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(tricky_text)
def test_round_trip_gpt2(gpt2, text):
    assert gpt2.decode(gpt2.encode_ordinary(text)) == text


@settings(max_examples=300, deadline=None)
@given(tricky_text)
def test_round_trip_trained(trained, trained_gpt2_pattern, text):
    for tok in (trained, trained_gpt2_pattern):
        ids = tok.encode_ordinary(text)
        assert tok.decode(ids) == text
        assert ids == tok.encode_ordinary(text, method="reference")


def test_empty_string(gpt2, trained):
    for tok in (gpt2, trained):
        assert tok.encode("") == [] and tok.decode([]) == ""


def test_lone_surrogates_become_replacement_characters(gpt2, tiktoken_gpt2):
    text = "a\ud800b"
    assert gpt2.encode(text) == tiktoken_gpt2.encode(text) == gpt2.encode("a\ufffdb")


# ---- special tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_special_token_text_raises_unless_allowed(gpt2, method):
    text = f"Hello {EOT} world"
    with pytest.raises(DisallowedSpecialTokenError, match="allowed_special"):
        gpt2.encode(text, method=method)
    with pytest.raises(ValueError):  # also a ValueError, like tiktoken's
        gpt2.encode(text, method=method)
    assert gpt2.encode(text, allowed_special={EOT}, method=method) == [15496, 220, 50256, 995]
    assert gpt2.encode(text, allowed_special="all", method=method) == [15496, 220, 50256, 995]
    as_text = gpt2.encode(text, disallowed_special=(), method=method)
    assert 50256 not in as_text and gpt2.decode(as_text) == text
    assert as_text == gpt2.encode_ordinary(text, method=method)


def test_unknown_allowed_special_is_an_error(gpt2):
    with pytest.raises(ScratchLMError, match="not special tokens"):
        gpt2.encode("x", allowed_special={"<|im_start|>"})


def test_trained_special_tokens_reference_equals_fast(stdlib_text):
    from scratchlm.tokenizer import train_bpe

    tok = train_bpe(stdlib_text[:50_000], 400, special_tokens=[EOT, "<|im_start|>", "<|im_end|>"])
    assert tok.special_tokens == {EOT: 397, "<|im_start|>": 398, "<|im_end|>": 399}
    text = f"<|im_start|>user\nhi{EOT}<|im_end|> <|im_start|><|im_end|>"
    fast = tok.encode(text, allowed_special="all")
    assert fast == tok.encode(text, allowed_special="all", method="reference")
    assert fast.count(398) == 2 and fast.count(399) == 2 and fast.count(397) == 1
    assert tok.decode(fast) == text


@settings(max_examples=100, deadline=None)
@given(tricky_text, tricky_text)
def test_specials_split_text_like_tiktoken(gpt2, tiktoken_gpt2, left, right):
    text = left + EOT + right
    expected = tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.encode(text, allowed_special="all") == expected
    assert gpt2.encode(text, allowed_special="all", method="reference") == expected


def test_encode_batch(gpt2):
    texts = ["hello world", "", SAMPLE_TEXT]
    assert gpt2.encode_batch(texts) == [gpt2.encode(t) for t in texts]
    with pytest.raises(DisallowedSpecialTokenError):
        gpt2.encode_batch(["fine", EOT])


# ---- decoding ----------------------------------------------------------------------------------------


def test_partial_utf8_decodes_to_replacement_character(gpt2):
    ids = gpt2.encode("🤖")
    assert len(ids) > 1  # the emoji is split inside its UTF-8 bytes
    assert gpt2.decode(ids[:1]) == "\ufffd"
    with pytest.raises(ScratchLMError, match="invalid UTF-8"):
        gpt2.decode(ids[:1], errors="strict")
    assert gpt2.decode_bytes(ids) == "🤖".encode()


def test_stream_decoder_holds_back_incomplete_characters(gpt2):
    text = "robot 🤖 says 日本語!"
    stream = StreamDecoder(gpt2)
    pieces = [stream.add(i) for i in gpt2.encode(text)] + [stream.flush()]
    assert "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)


def test_bad_ids_give_a_clear_error(gpt2):
    for bad in ([50257], [-1], [1, "x"]):
        with pytest.raises(ScratchLMError, match="not in this tokenizer"):
            gpt2.decode(bad)


# ---- format ------------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, trained):
    path = trained.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(path)
    assert loaded.ranks == trained.ranks
    assert loaded.pattern == trained.pattern
    assert loaded.special_tokens == trained.special_tokens
    assert loaded.fingerprint == trained.fingerprint
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "scratchlm-bpe" and data["version"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rejects_other_versions_and_junk(tmp_path, trained):
    data = trained.to_dict() | {"version": 99}
    (tmp_path / "v99.json").write_text(json.dumps(data))
    with pytest.raises(ScratchLMError, match="version 99"):
        Tokenizer.load(tmp_path / "v99.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ScratchLMError, match="not a JSON file"):
        Tokenizer.load(tmp_path / "junk.json")
    with pytest.raises(ScratchLMError, match="no such file"):
        Tokenizer.load(tmp_path / "missing.json")


def test_constructor_checks(gpt2):
    with pytest.raises(ScratchLMError, match="256 single bytes"):
        Tokenizer({b"a": 0}, gpt2.pattern)
    with pytest.raises(ScratchLMError, match="reuses id"):
        Tokenizer(gpt2.ranks, gpt2.pattern, {EOT: 5})


@pytest.mark.parametrize(
    ("specials", "message"),
    [
        ([""], "non-empty"),
        (["\ud800"], "lone surrogate"),
        (["<|a|>", "<|a|>b"], "is part of special token"),
        ("<|x|>", "a list of strings"),
    ],
)
def test_special_tokens_are_checked(stdlib_text, specials, message):
    from scratchlm.tokenizer import train_bpe

    with pytest.raises(ScratchLMError, match=message):
        train_bpe(stdlib_text[:1000], 300, special_tokens=specials)


def test_capturing_groups_are_refused(gpt2):
    with pytest.raises(ScratchLMError, match="capturing groups"):
        Tokenizer(gpt2.ranks, r"(\w+)\s*")


def test_malformed_tokenizer_files(tmp_path, trained):
    for data, message in (
        ({"format": "scratchlm-bpe", "version": 1, "vocab": {}}, "lacks"),
        ({"format": "scratchlm-bpe", "version": 1, "pattern": "x", "vocab": []}, "must map"),
    ):
        (tmp_path / "t.json").write_text(json.dumps(data))
        with pytest.raises(ScratchLMError, match=message):
            Tokenizer.load(tmp_path / "t.json")


def test_huge_tokens_have_a_fingerprint():
    from scratchlm.tokenizer import train_bpe

    tok = train_bpe(["=" * 140_000] * 2, 300, special_tokens=[], min_frequency=1)
    assert len(tok.fingerprint) == 64 and tok.encode("abc")


def test_decode_bad_id_from_an_iterator(gpt2):
    with pytest.raises(ScratchLMError, match="not in this tokenizer"):
        gpt2.decode(iter([1, 10**9]))
