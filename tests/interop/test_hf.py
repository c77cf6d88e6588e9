"""Hugging Face GPT-2 both ways: same weights give the same logits (max |diff| <= 1e-4 in fp32) for a tiny
config and the real 124M shape; every checkpoint layout loads; pickles with code are refused."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from scratchlm.config import gpt2_small, tiny
from scratchlm.errors import ScratchLMError
from scratchlm.interop.hf import config_from_hf, load_hf_gpt2, read_hf_weights, save_hf_gpt2
from scratchlm.model import GPT

transformers = pytest.importorskip("transformers")


def hf_model(seed: int = 0, **kwargs) -> transformers.GPT2LMHeadModel:
    torch.manual_seed(seed)
    defaults = dict(
        vocab_size=500, n_positions=32, n_embd=64, n_layer=3, n_head=4, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**(defaults | kwargs))).eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("tied", [True, False])
def test_import_matches_transformers_logits(tmp_path, tied):
    hf = hf_model(tie_word_embeddings=tied)
    hf.save_pretrained(tmp_path)
    ours = load_hf_gpt2(tmp_path)
    assert ours.cfg.tie_embeddings is tied and ours.cfg.qkv_bias
    x = torch.randint(0, 500, (2, 32))
    with torch.no_grad():
        assert max_diff(ours(x), hf(x).logits) <= 1e-4


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_export_loads_in_transformers_with_the_same_logits(tmp_path, qkv_bias):
    torch.manual_seed(0)
    ours = GPT(tiny(vocab_size=500, context_length=32, qkv_bias=qkv_bias)).eval()
    save_hf_gpt2(ours, tmp_path, eos_id=499)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 500, (2, 32))
    with torch.no_grad():
        assert max_diff(ours(x), hf(x).logits) <= 1e-4
    assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == 499


@pytest.mark.slow
def test_real_124m_shape_both_directions(tmp_path):
    torch.manual_seed(0)
    ours = GPT(gpt2_small(qkv_bias=True)).eval()
    save_hf_gpt2(ours, tmp_path / "hf", eos_id=50256)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    back = load_hf_gpt2(tmp_path / "hf")
    x = torch.randint(0, 50257, (1, 64))
    with torch.no_grad():
        reference = hf(x).logits
        assert max_diff(ours(x), reference) <= 1e-4
        assert max_diff(back(x), reference) <= 1e-4


def test_keys_without_prefix_and_old_mask_buffers(tmp_path):
    hf = hf_model()
    hf.save_pretrained(tmp_path / "a")
    tensors = load_file(str(tmp_path / "a" / "model.safetensors"))
    bare = {k.removeprefix("transformer."): v.clone() for k, v in tensors.items()}
    bare["h.0.attn.bias"] = torch.ones(1, 1, 32, 32)  # a causal-mask buffer, as old checkpoints carry
    (tmp_path / "b").mkdir()
    save_file(bare, str(tmp_path / "b" / "model.safetensors"))
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    x = torch.randint(0, 500, (1, 10))
    with torch.no_grad():
        assert max_diff(load_hf_gpt2(tmp_path / "b")(x), hf(x).logits) <= 1e-4


def test_sharded_safetensors_and_pytorch_bin(tmp_path):
    hf = hf_model()
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    hf.save_pretrained(tmp_path / "bin")
    tensors = load_file(str(tmp_path / "bin" / "model.safetensors"))
    (tmp_path / "bin" / "model.safetensors").unlink()
    torch.save(tensors, tmp_path / "bin" / "pytorch_model.bin")
    x = torch.randint(0, 500, (1, 10))
    with torch.no_grad():
        for d in ("sharded", "bin"):
            assert max_diff(load_hf_gpt2(tmp_path / d)(x), hf(x).logits) <= 1e-4


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_with_code_are_refused(tmp_path, capsys):
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Exploit()}, protocol=2))
    with pytest.raises(ScratchLMError, match="weights_only=True"):
        read_hf_weights(tmp_path)
    assert "pwned" not in capsys.readouterr().out


def test_clear_errors(tmp_path):
    with pytest.raises(ScratchLMError, match=r"no model\.safetensors"):
        read_hf_weights(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ScratchLMError, match="not a readable safetensors"):
        read_hf_weights(tmp_path)
    with pytest.raises(ScratchLMError, match="not supported"):
        config_from_hf({"model_type": "llama"})
    hf = hf_model()
    hf.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg | {"n_layer": 4}))
    with pytest.raises(ScratchLMError, match="lacks"):
        load_hf_gpt2(tmp_path / "m")
