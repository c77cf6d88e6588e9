"""Stage 4, production version: causal multi-head self-attention with one fused q/k/v projection and
PyTorch's `scaled_dot_product_attention` (flash/memory-efficient kernels where the device has them).

Two modern choices of the config: rotary positions (queries and keys turned by their position, see
`rope.py`) and grouped-query attention, where `n_kv_heads` key/value heads are shared by groups of
`n_heads / n_kv_heads` query heads (Ainslie et al. 2023): fewer keys and values to compute and, above all,
to keep in the KV cache. With n_kv_heads == n_heads it is the multi-head attention of GPT-2.

`attention_reference.py` builds the same computation step by step, as the book does; tests prove them equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchlm.config import ModelConfig
from scratchlm.model.kv_cache import KVCache
from scratchlm.model.norms import make_norm
from scratchlm.model.rope import apply_rotary


class MultiHeadAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, value_embedding: bool = False) -> None:
        """`value_embedding`: this layer mixes a value embedding into its values (`forward`'s `ve`)."""
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.dropout = cfg.dropout
        q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.sizes = [q_dim, kv_dim, kv_dim]
        self.qkv = nn.Linear(cfg.emb_dim, q_dim + 2 * kv_dim, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(q_dim, cfg.emb_dim, bias=cfg.bias)
        # QK-norm (Qwen3, Gemma 3): each head's query and key scaled to RMS 1 before the rotation, which
        # keeps the attention logits from growing without bound; Olmo normalises the whole projections.
        self.qk_norm_heads = cfg.qk_norm_scope == "head"
        q_width, k_width = (cfg.head_dim, cfg.head_dim) if self.qk_norm_heads else (q_dim, kv_dim)
        self.q_norm = make_norm(cfg, q_width) if cfg.qk_norm else None
        self.k_norm = make_norm(cfg, k_width) if cfg.qk_norm else None
        # The scores' scale: 1 / sqrt(head_dim), or Gemma's 1 / sqrt(query_pre_attn_scalar).
        self.scale = cfg.attn_scalar**-0.5 if cfg.attn_scalar is not None else None
        self.softcap = cfg.attn_softcap
        # Value embeddings (modded-nanogpt): v = a * v + b * ve, a and b learned, 0.5 each at the start.
        self.ve_mix = nn.Parameter(torch.full((2,), 0.5)) if value_embedding else None

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        ve: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C). `attn_mask`: None for plain causal attention, else a boolean (B or 1, 1, T, T_keys)
        mask where True means "may attend". With a cache, keys/values of earlier tokens come from it.
        `rope`: the (cos, sin) of these T positions, for rotary positions. `ve`: (B, T, kv width), this
        layer's value embedding of the T tokens, when it has one."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.sizes, dim=2)
        if self.ve_mix is not None:
            if ve is None:
                raise ValueError("this attention layer mixes in a value embedding: pass `ve`")
            v = self.ve_mix[0] * v + self.ve_mix[1] * ve.to(v.dtype)
        whole = self.q_norm is not None and self.k_norm is not None and not self.qk_norm_heads
        if whole:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, D)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None and not whole:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, H_kv, T_keys, D): the cache keeps the shared heads only
        if self.n_kv_heads < self.n_heads:  # each key/value head serves a group of consecutive query heads
            group = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        dropout = self.dropout if self.training else 0.0
        if self.softcap is not None:
            y = softcapped_attention(q, k, v, attn_mask, self.scale, self.softcap, dropout)
        else:
            # Without a mask, queries are the last T of the keys: causal when T > 1, see-all when T == 1.
            is_causal = attn_mask is None and T > 1
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout, is_causal=is_causal, scale=self.scale
            )
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.out_proj(y)


def softcapped_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None,
    scale: float | None,
    cap: float,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Attention whose scores are squashed into (-cap, cap) by cap * tanh(scores / cap) before the softmax
    (Gemma 2): no fused kernel does that, so it is written out. Masking as `scaled_dot_product_attention`."""
    T, T_keys = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    scores = cap * torch.tanh(scores / cap)
    if attn_mask is None:  # the queries are the last T of the keys
        attn_mask = torch.ones(T, T_keys, dtype=torch.bool, device=q.device).tril(T_keys - T)
    scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = F.dropout(torch.softmax(scores.float(), dim=-1).to(q.dtype), dropout)
    return weights @ v
