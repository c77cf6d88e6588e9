"""The GPT model: shapes, sizes, GPT-2's initialisation, causality, padding and the KV cache."""

from __future__ import annotations

import math

import pytest
import torch

from scratchlm.config import gpt2_small, tiny
from scratchlm.errors import ScratchLMError
from scratchlm.model import GPT, KVCache, sizing
from scratchlm.model.blocks import GELU, LayerNorm


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(tiny(vocab_size=300, context_length=32)).eval()


def test_shapes_and_parameter_counts(model):
    x = torch.randint(0, 300, (2, 7))
    assert model(x).shape == (2, 7, 300)
    for cfg in (gpt2_small(), gpt2_small(tie_embeddings=False), tiny(qkv_bias=True)):
        assert GPT(cfg, init=False).num_parameters() == sizing.parameter_count(cfg)
    assert sizing.parameter_count(gpt2_small()) == 124_412_160
    assert sizing.parameter_count(gpt2_small(tie_embeddings=False)) == 163_009_536
    assert sizing.memory_bytes(gpt2_small()) == 124_412_160 * 4


def test_tied_head_shares_the_embedding(model):
    assert model.out_head.weight is model.emb.tok_emb.weight
    untied = GPT(tiny(vocab_size=300, tie_embeddings=False))
    assert untied.out_head.weight is not untied.emb.tok_emb.weight


def test_gpt2_initialisation_statistics():
    torch.manual_seed(0)
    m = GPT(tiny(emb_dim=256, n_layers=8, n_heads=4))
    assert abs(m.trf_blocks[0].att.qkv.weight.std().item() - 0.02) < 1e-3
    residual = 0.02 / math.sqrt(2 * 8)
    assert abs(m.trf_blocks[3].att.out_proj.weight.std().item() - residual) < 5e-4
    assert abs(m.trf_blocks[3].ff.layers[2].weight.std().item() - residual) < 5e-4
    assert torch.all(m.trf_blocks[0].ff.layers[0].bias == 0)
    assert torch.all(m.final_norm.scale == 1)
    torch.manual_seed(0)
    gated = GPT(tiny(emb_dim=256, n_layers=8, n_heads=4, mlp="swiglu", ff_dim=512))
    assert abs(gated.trf_blocks[3].ff.down.weight.std().item() - residual) < 5e-4
    assert abs(gated.trf_blocks[3].ff.up.weight.std().item() - 0.02) < 1e-3


def test_gelu_and_layernorm_are_the_books():
    x = torch.linspace(-4, 4, 101)
    book_gelu = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert torch.allclose(GELU()(x), book_gelu, atol=1e-6)
    ln = LayerNorm(8)
    v = torch.randn(4, 8)
    book = (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, keepdim=True, unbiased=False) + 1e-5)
    assert torch.allclose(ln(v), book, atol=1e-5)


def test_causality(model):
    """Changing tokens after position t never changes the logits at positions <= t."""
    torch.manual_seed(1)
    x = torch.randint(0, 300, (1, 20))
    base = model(x)
    for t in (0, 5, 18):
        changed = x.clone()
        changed[0, t + 1 :] = torch.randint(0, 300, (19 - t,))
        out = model(changed)
        assert torch.allclose(out[0, : t + 1], base[0, : t + 1], atol=1e-6)


def test_cached_forward_equals_full_forward(model):
    x = torch.randint(0, 300, (2, 20))
    full = model(x)
    cache = KVCache.for_model(model.cfg, batch_size=2)
    pieces = [model(x[:, :8], cache), model(x[:, 8:9], cache), model(x[:, 9:20], cache)]
    assert cache.pos == 20
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


def test_left_padding_gives_the_unpadded_logits(model):
    x = torch.randint(0, 300, (1, 6))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 6])
    positions = (mask.long().cumsum(1) - 1).clamp(min=0)
    out = model(padded, padding_mask=mask, position_ids=positions)
    assert torch.allclose(out[:, 3:], model(x), atol=1e-5)
    assert torch.isfinite(out).all()


def test_last_only_is_the_last_row(model):
    x = torch.randint(0, 300, (2, 9))
    assert torch.allclose(model(x, last_only=True), model(x)[:, -1:], atol=1e-5)


def test_too_long_inputs_and_full_caches_are_clear_errors(model):
    with pytest.raises(ScratchLMError, match="longer than the context length 32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    cache = KVCache.for_model(model.cfg, 1, max_len=4)
    with pytest.raises(ScratchLMError, match="KV cache is full"):
        model(torch.zeros(1, 5, dtype=torch.long), cache)


def test_a_cache_over_some_rows_writes_into_the_whole(model):
    """KVCache.rows: the engine's view of the rows it decodes; a row run alone through its view gets the
    logits it gets in a cache of its own, and its keys land in the shared tensors."""
    x = torch.randint(0, 300, (1, 6))
    alone = KVCache.for_model(model.cfg, 1)
    expected = model(x, alone)
    shared = KVCache.for_model(model.cfg, 3)
    part = shared.rows(slice(2, 3), 0)
    assert torch.allclose(model(x, part), expected, atol=1e-6)
    assert part.pos == 6 and shared.pos == 0  # each view owns its position
    assert torch.equal(shared.k[:, 2:3, :, :6], alone.k[:, :, :, :6])
    assert not shared.k[:, :2].any()  # the other rows untouched


def test_flops_per_token_counts_training_as_three_forwards():
    cfg = gpt2_small()
    assert sizing.flops_per_token(cfg, training=True) == 3 * sizing.flops_per_token(cfg, training=False)
