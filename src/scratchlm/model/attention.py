"""Stage 4, production version: causal multi-head self-attention with one fused q/k/v projection and
PyTorch's `scaled_dot_product_attention` (flash/memory-efficient kernels where the device has them).

`attention_reference.py` builds the same computation step by step, as the book does; tests prove them equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchlm.config import ModelConfig
from scratchlm.model.kv_cache import KVCache


class MultiHeadAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.head_dim
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.emb_dim, 3 * cfg.emb_dim, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(cfg.emb_dim, cfg.emb_dim)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """x: (B, T, C). `attn_mask`: None for plain causal attention, else a boolean (B or 1, 1, T, T_keys)
        mask where True means "may attend". With a cache, keys/values of earlier tokens come from it."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, H, T_keys, D)
        # Without a mask, queries are the last T of the keys: causal when T > 1, see-everything when T == 1.
        is_causal = attn_mask is None and T > 1
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.out_proj(y)
