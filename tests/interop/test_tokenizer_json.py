"""HF tokenizer.json: our export loads in `tokenizers` and `transformers` with identical ids; GPT-2's
tokenizer.json (as transformers writes it) imports to ids identical to ours and tiktoken's."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings

from scratchlm.errors import ScratchLMError
from scratchlm.interop.tokenizer_json import from_tokenizer_json, load_tokenizer_json, save_tokenizer_json
from scratchlm.tokenizer import EOT, GPT4_PATTERN
from scratchlm.tokenizer.gpt2 import gpt2_files
from tests.strategies import SAMPLE_TEXT, tricky_text

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, trained, trained_gpt2_pattern, gpt2):
    """Each tokenizer exported, loaded back by HF `tokenizers` and by `transformers`."""
    out = {}
    for name, tok in (("gpt4-split", trained), ("gpt2-split", trained_gpt2_pattern), ("gpt2", gpt2)):
        d = tmp_path_factory.mktemp(name)
        save_tokenizer_json(tok, d)
        hf = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
        fast = transformers.PreTrainedTokenizerFast.from_pretrained(str(d))
        out[name] = (tok, hf, fast, d)
    return out


@pytest.mark.parametrize("name", ["gpt4-split", "gpt2-split", "gpt2"])
def test_export_gives_identical_ids_in_hf(exported, stdlib_text, name):
    tok, hf, fast, _ = exported[name]
    text = stdlib_text[:60_000] + SAMPLE_TEXT
    ids = tok.encode_ordinary(text)
    assert hf.encode(text).ids == ids
    assert fast(text)["input_ids"] == ids
    assert hf.decode(ids) == text


@settings(max_examples=150, deadline=None)
@given(tricky_text)
def test_export_parity_on_any_unicode(exported, text):
    for tok, hf, _, _ in exported.values():
        assert hf.encode(text).ids == tok.encode_ordinary(text)


def test_exported_special_tokens(exported):
    tok, hf, fast, d = exported["gpt4-split"]
    text = f"hello{EOT}world"
    assert hf.encode(text).ids == tok.encode(text, allowed_special="all")
    assert fast.eos_token == EOT and fast.eos_token_id == tok.eot_id
    config = json.loads((d / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_round_trip_through_our_export(exported):
    for tok, _, _, d in exported.values():
        back = load_tokenizer_json(d / "tokenizer.json")
        assert back.ranks == tok.ranks
        assert back.special_tokens == tok.special_tokens
        assert back.pattern == tok.pattern


def test_import_gpt2_tokenizer_json_written_by_transformers(tmp_path, gpt2, tiktoken_gpt2):
    encoder, bpe = gpt2_files()
    shutil.copy(encoder, tmp_path / "vocab.json")
    shutil.copy(bpe, tmp_path / "merges.txt")
    hf_gpt2 = transformers.GPT2Tokenizer.from_pretrained(str(tmp_path))
    hf_gpt2.save_pretrained(str(tmp_path / "saved"))
    tok = load_tokenizer_json(tmp_path / "saved")
    assert tok.ranks == gpt2.ranks and tok.special_tokens == gpt2.special_tokens
    text = SAMPLE_TEXT * 3
    assert tok.encode(text) == tiktoken_gpt2.encode(text) == hf_gpt2(text)["input_ids"]


def test_import_rejects_what_it_cannot_read(tmp_path):
    with pytest.raises(ScratchLMError, match="model type 'WordPiece'"):
        from_tokenizer_json({"model": {"type": "WordPiece"}})
    with pytest.raises(ScratchLMError, match="pre-tokenizer"):
        from_tokenizer_json({"model": {"type": "BPE", "vocab": {}}, "pre_tokenizer": {"type": "Whitespace"}})
    bad_vocab = {
        "model": {"type": "BPE", "vocab": {"▁the": 0}},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
    }
    with pytest.raises(ScratchLMError, match="byte-level alphabet"):
        from_tokenizer_json(bad_vocab)
    with pytest.raises(ScratchLMError, match="no such file"):
        load_tokenizer_json(tmp_path / "nothing.json")


def test_gpt4_pattern_round_trips_through_the_hf_dialect(exported):
    _, _, _, d = exported["gpt4-split"]
    data = json.loads((d / "tokenizer.json").read_text())
    assert "{1,3}+" not in json.dumps(data)  # not possessive in Oniguruma
    assert from_tokenizer_json(data).pattern == GPT4_PATTERN


@pytest.mark.parametrize("pattern", [r"\p{L}+|\s+|[^\s\p{L}]+", r"\p{L}{1,4}+|\p{N}{2}|\s+|\S"])
def test_custom_patterns_export_with_identical_ids(tmp_path, stdlib_text, pattern):
    from scratchlm.tokenizer import train_bpe

    tok = train_bpe(stdlib_text[:100_000], 400, pattern=pattern)
    save_tokenizer_json(tok, tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    text = stdlib_text[100_000:120_000] + SAMPLE_TEXT
    assert hf.encode(text).ids == tok.encode_ordinary(text)


def test_import_refuses_steps_it_cannot_reproduce(exported):
    _, _, _, d = exported["gpt2-split"]
    data = json.loads((d / "tokenizer.json").read_text())
    for change, message in (
        ({"normalizer": {"type": "NFC"}}, "normalizers"),
        ({"model": data["model"] | {"byte_fallback": True}}, "byte_fallback"),
        (
            {"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": EOT}}]}},
            "post-processor",
        ),
    ):
        with pytest.raises(ScratchLMError, match=message):
            from_tokenizer_json(data | change)
