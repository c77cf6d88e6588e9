"""Stage 4, the readable path of the book (chapter 3), kept as a reference: from attention without
weights to multi-head causal attention, one idea per class. Slow on purpose; `attention.py` is what the
model runs, and the tests prove each step equal to it on the same weights.
"""

from __future__ import annotations

import torch
from torch import nn


def simplified_self_attention(inputs: torch.Tensor) -> torch.Tensor:
    """No trainable weights: each token's context vector is a softmax-weighted sum of all inputs,
    weighted by dot-product similarity. inputs: (T, d) -> (T, d)."""
    scores = inputs @ inputs.T
    weights = torch.softmax(scores, dim=-1)
    return weights @ inputs


class SelfAttentionV1(nn.Module):
    """Trainable query/key/value matrices as raw parameters; scores scaled by sqrt(d_k)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, d_in) -> (T, d_out)
        queries, keys, values = x @ self.W_query, x @ self.W_key, x @ self.W_value
        weights = torch.softmax(queries @ keys.T / keys.shape[-1] ** 0.5, dim=-1)
        return weights @ values


class SelfAttentionV2(nn.Module):
    """The same with nn.Linear layers (better initialisation, optional bias)."""

    def __init__(self, d_in: int, d_out: int, qkv_bias: bool = False) -> None:
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, d_in) -> (T, d_out)
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        weights = torch.softmax(queries @ keys.T / keys.shape[-1] ** 0.5, dim=-1)
        return weights @ values


class CausalAttention(nn.Module):
    """Batched, and each token may only attend to itself and earlier tokens (a mask of -inf above the
    diagonal before the softmax), with dropout on the attention weights."""

    def __init__(
        self, d_in: int, d_out: int, context_length: int, dropout: float, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length), diagonal=1).bool()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d_in) -> (B, T, d_out)
        T = x.shape[1]
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        scores = queries @ keys.transpose(1, 2)
        scores = scores.masked_fill(self.mask[:T, :T], -torch.inf)
        weights = self.dropout(torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1))
        return weights @ values


class MultiHeadAttentionWrapper(nn.Module):
    """Several causal attention heads side by side, outputs concatenated: (B, T, num_heads * d_out)."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        dropout: float,
        num_heads: int,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=-1)


class BookMultiHeadAttention(nn.Module):
    """The book's efficient multi-head attention: one projection per q/k/v for all heads, split into heads
    by reshaping, an output projection, an explicit mask and softmax."""

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        dropout: float,
        num_heads: int,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        assert d_out % num_heads == 0, "d_out must be divisible by num_heads"
        self.num_heads, self.head_dim = num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length), diagonal=1).bool()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, d_out) -> (B, H, T, D)
            return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

        queries, keys, values = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))
        scores = (queries @ keys.transpose(2, 3)).masked_fill(self.mask[:T, :T], -torch.inf)
        weights = self.dropout(torch.softmax(scores / self.head_dim**0.5, dim=-1))
        context = (weights @ values).transpose(1, 2).reshape(B, T, -1)
        return self.out_proj(context)


@torch.no_grad()
def wrapper_to_book(wrapper: MultiHeadAttentionWrapper, book: BookMultiHeadAttention) -> None:
    """Copy a wrapper's per-head weights into the book's MHA (stacked by head, identity output projection)."""
    for name in ("W_query", "W_key", "W_value"):
        target = getattr(book, name)
        target.weight.copy_(torch.cat([getattr(h, name).weight for h in wrapper.heads], dim=0))
        if target.bias is not None:
            target.bias.copy_(torch.cat([getattr(h, name).bias for h in wrapper.heads], dim=0))
    book.out_proj.weight.copy_(torch.eye(book.out_proj.weight.shape[0]))
    book.out_proj.bias.zero_()


@torch.no_grad()
def book_to_fused(book: BookMultiHeadAttention, fused: nn.Module) -> None:
    """Copy the book's separate q/k/v projections into the production attention's fused `qkv`."""
    fused.qkv.weight.copy_(torch.cat([book.W_query.weight, book.W_key.weight, book.W_value.weight], dim=0))
    if fused.qkv.bias is not None:
        fused.qkv.bias.copy_(torch.cat([book.W_query.bias, book.W_key.bias, book.W_value.bias], dim=0))
    fused.out_proj.load_state_dict(book.out_proj.state_dict())
