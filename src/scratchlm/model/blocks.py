"""Stage 5 building blocks: layer norm, GELU, the feed-forward network and the transformer block with its
two shortcut connections (pre-norm, as GPT-2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchlm.config import ModelConfig
from scratchlm.model.attention import MultiHeadAttention
from scratchlm.model.kv_cache import KVCache


class LayerNorm(nn.Module):
    """Normalise each vector to mean 0, variance 1 (biased variance, as GPT-2), then scale and shift."""

    def __init__(self, emb_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same as (x - mean) / sqrt(var + eps) * scale + shift, in one fused kernel.
        return F.layer_norm(x, (x.shape[-1],), self.scale, self.shift, self.eps)


class GELU(nn.Module):
    """GELU, tanh approximation (GPT-2's "gelu_new"):
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


class FeedForward(nn.Module):
    """Expand to 4x the width, GELU, project back."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransformerBlock(nn.Module):
    """x + dropout(attention(norm(x))), then x + dropout(feed_forward(norm(x)))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1 = LayerNorm(cfg.emb_dim, cfg.norm_eps)
        self.att = MultiHeadAttention(cfg)
        self.norm2 = LayerNorm(cfg.emb_dim, cfg.norm_eps)
        self.ff = FeedForward(cfg)
        self.drop_shortcut = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x), attn_mask, kv_cache, layer))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))
