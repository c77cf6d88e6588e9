"""Stage 4, the readable path of the book (chapter 3), kept as a reference: from attention without
weights to multi-head causal attention, one idea per class, then on to the modern families' attention
(rotary positions, grouped-query attention). Slow on purpose; `attention.py` is what the
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


@torch.no_grad()
def gqa_to_fused(book: BookGroupedQueryAttention, fused: nn.Module) -> None:
    """Copy the readable grouped-query attention's weights into the production attention."""
    book_to_fused(book, fused)  # type: ignore[arg-type]


class BookGroupedQueryAttention(nn.Module):
    """The ladder's next two steps, toward Llama: rotary positions and grouped-query attention.

    Rotary: before the scores, each query and key head vector of size D is read as D/2 pairs (coordinate i
    with coordinate i + D/2) and each pair is turned by the angle position × theta^(-2i/D), the plain 2-D
    rotation (a cos - b sin, a sin + b cos). Grouped-query: only `num_kv_groups` key/value heads are
    computed; each serves `num_heads / num_kv_groups` consecutive query heads. No biases on the output
    projection, as in Llama."""

    def __init__(
        self,
        d_in: int,
        num_heads: int,
        num_kv_groups: int,
        head_dim: int,
        context_length: int,
        theta: float = 10000.0,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        assert num_heads % num_kv_groups == 0, "num_heads must be a multiple of num_kv_groups"
        self.num_heads, self.num_kv_groups, self.head_dim = num_heads, num_kv_groups, head_dim
        self.W_query = nn.Linear(d_in, num_heads * head_dim, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, num_kv_groups * head_dim, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, num_kv_groups * head_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(num_heads * head_dim, d_in, bias=False)
        pair = torch.arange(head_dim // 2).float()
        angles = torch.arange(context_length).float()[:, None] * theta ** (-2 * pair / head_dim)  # (T, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length), diagonal=1).bool()
        )

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Turn each pair (a, b) = (x[..., i], x[..., i + D/2]) of x (B, H, T, D) by its position's angle."""
        T, half = x.shape[2], self.head_dim // 2
        a, b = x[..., :half], x[..., half:]
        cos, sin = self.cos[:T], self.sin[:T]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape

        def heads(t: torch.Tensor, n: int) -> torch.Tensor:  # (B, T, n * D) -> (B, n, T, D)
            return t.view(B, T, n, self.head_dim).transpose(1, 2)

        queries = self.rotate(heads(self.W_query(x), self.num_heads))
        keys = self.rotate(heads(self.W_key(x), self.num_kv_groups))
        values = heads(self.W_value(x), self.num_kv_groups)
        group = self.num_heads // self.num_kv_groups
        keys, values = keys.repeat_interleave(group, dim=1), values.repeat_interleave(group, dim=1)
        scores = (queries @ keys.transpose(2, 3)).masked_fill(self.mask[:T, :T], -torch.inf)
        weights = torch.softmax(scores / self.head_dim**0.5, dim=-1)
        context = (weights @ values).transpose(1, 2).reshape(B, T, -1)
        return self.out_proj(context)
