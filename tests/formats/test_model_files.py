"""Model directories (ours and HF's) load with their tokenizer; Hub names download over HTTP."""

from __future__ import annotations

import pytest
import torch

from scratchlm.errors import ScratchLMError
from scratchlm.formats.model_files import load_model, save_model
from scratchlm.formats.tokenizer_files import save_tokenizer
from scratchlm.interop.hf import save_hf_gpt2
from tests.fake_hub import serve_hub
from tests.tiny import tiny_gpt


@pytest.fixture(scope="module")
def tiny_gpt2():
    return tiny_gpt(vocab_size=50257)  # GPT-2's vocabulary: the model saves with GPT-2's tokenizer


def test_our_format_round_trip(tmp_path, tiny_gpt2, gpt2):
    save_model(tiny_gpt2, tmp_path, gpt2)
    model, tok = load_model(tmp_path)
    x = torch.randint(0, 50257, (1, 8))
    with torch.no_grad():
        assert torch.equal(model(x), tiny_gpt2(x))
    assert tok.ranks == gpt2.ranks
    assert model.out_head.weight is model.emb.tok_emb.weight


def test_gpt2_sized_vocab_falls_back_to_gpt2_tokenizer(tmp_path, tiny_gpt2):
    save_model(tiny_gpt2, tmp_path)
    _, tok = load_model(tmp_path)
    assert tok is not None and tok.vocab_size == 50257


def test_errors(tmp_path):
    with pytest.raises(ScratchLMError, match="no such model directory"):
        load_model(tmp_path / "nothing")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScratchLMError, match="is a directory"):
        load_model(tmp_path / "f")
    with pytest.raises(ScratchLMError, match=r"config\.json: no such file"):
        load_model(tmp_path)


@pytest.fixture
def hub(tmp_path, monkeypatch, tiny_gpt2, gpt2):
    """A fake Hub on 127.0.0.1 serving <root>/<org>/<repo>/resolve/main/<file>."""
    repo = tmp_path / "server" / "openai-community" / "gpt2" / "resolve" / "main"
    save_hf_gpt2(tiny_gpt2, repo, eos_id=50256)
    save_tokenizer(gpt2, repo)
    with serve_hub(tmp_path / "server", tmp_path / "cache", monkeypatch):
        yield tmp_path


def test_download_by_name_then_offline_from_cache(hub, tiny_gpt2, monkeypatch):
    model, tok = load_model("gpt2")
    x = torch.randint(0, 50257, (1, 8))
    with torch.no_grad():
        assert torch.allclose(model(x), tiny_gpt2(x), atol=1e-5)
    assert tok is not None and tok.eot_id == 50256
    assert not list((hub / "cache").rglob("*.part"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model("gpt2")[0].cfg == model.cfg  # served from the cache


def test_missing_repo_is_a_clear_error(hub):
    with pytest.raises(ScratchLMError, match="HTTP 404"):
        load_model("someone/missing-model")


def test_offline_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHLM_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScratchLMError, match="HF_HUB_OFFLINE=1"):
        load_model("gpt2-medium")
