"""The book's step-by-step attention classes equal the production multi-head attention (<= 1e-6)."""

from __future__ import annotations

import pytest
import torch

from scratchlm.config import ModelConfig
from scratchlm.model import attention_reference as ref
from scratchlm.model.attention import MultiHeadAttention


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def test_simplified_self_attention_matches_the_book_example():
    inputs = torch.tensor(
        [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
         [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]
    )  # fmt: skip
    context = ref.simplified_self_attention(inputs)
    # The book's context vector for "journey" (the second token).
    assert torch.allclose(context[1], torch.tensor([0.4419, 0.6515, 0.5683]), atol=1e-4)


def test_v1_equals_v2_with_the_same_weights():
    torch.manual_seed(0)
    v2 = ref.SelfAttentionV2(3, 2)
    v1 = ref.SelfAttentionV1(3, 2)
    v1.W_query.copy_(v2.W_query.weight.T)
    v1.W_key.copy_(v2.W_key.weight.T)
    v1.W_value.copy_(v2.W_value.weight.T)
    x = torch.rand(6, 3)
    assert torch.allclose(v1(x), v2(x), atol=1e-6)


def test_causal_attention_is_v2_with_a_mask():
    torch.manual_seed(0)
    v2 = ref.SelfAttentionV2(3, 2)
    causal = ref.CausalAttention(3, 2, context_length=6, dropout=0.0)
    causal.load_state_dict(v2.state_dict() | {"mask": causal.mask})
    x = torch.rand(6, 3)
    out = causal(x[None])[0]
    assert torch.allclose(out[-1], v2(x)[-1], atol=1e-6)  # the last token sees everything in both
    assert torch.allclose(out[0], v2(x[:1])[0], atol=1e-6)  # the first sees only itself


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_wrapper_book_and_production_are_equal(qkv_bias):
    torch.manual_seed(0)
    d, heads, T = 32, 4, 10
    wrapper = ref.MultiHeadAttentionWrapper(d, d // heads, T, 0.0, heads, qkv_bias)
    book = ref.BookMultiHeadAttention(d, d, T, 0.0, heads, qkv_bias)
    fused = MultiHeadAttention(
        ModelConfig(emb_dim=d, n_heads=heads, context_length=T, dropout=0.0, qkv_bias=qkv_bias)
    )
    ref.wrapper_to_book(wrapper, book)
    x = torch.randn(3, T, d)
    assert (wrapper(x) - book(x)).abs().max() <= 1e-6
    torch.manual_seed(1)
    book = ref.BookMultiHeadAttention(d, d, T, 0.0, heads, qkv_bias)  # random output projection too
    ref.book_to_fused(book, fused)
    assert (book(x) - fused(x)).abs().max() <= 1e-6


def test_dropout_only_in_training():
    torch.manual_seed(0)
    attn = MultiHeadAttention(ModelConfig(emb_dim=16, n_heads=2, context_length=8, dropout=0.5))
    x = torch.randn(1, 8, 16)
    attn.eval()
    assert torch.equal(attn(x), attn(x))
    attn.train()
    assert not torch.equal(attn(x), attn(x))
