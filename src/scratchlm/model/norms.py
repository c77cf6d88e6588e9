"""Normalisation layers: GPT-2's LayerNorm and the modern families' RMSNorm (also used per attention head
for QK-norm), and `make_norm`, which picks by the config. Apart from `blocks.py` so that attention can use
them too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratchlm.config import ModelConfig


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


class RMSNorm(nn.Module):
    """Scale each vector to root-mean-square 1, then by a learned gain (Zhang & Sennrich 2019): LayerNorm
    without the mean and the shift. Computed in fp32 and cast back before the gain, as Llama does.

    With `offset` 1 (Gemma), the gain is 1 + scale, the weights store how far it is from 1 (they start
    at 0), and the gain is applied in fp32 before the cast back, as Gemma does."""

    def __init__(self, emb_dim: int, eps: float = 1e-6, offset: float = 0.0) -> None:
        super().__init__()
        self.eps, self.offset = eps, offset
        self.scale = nn.Parameter(torch.full((emb_dim,), 1.0 - offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.offset:
            return (x32 * (self.offset + self.scale.float())).to(x.dtype)
        return self.scale * x32.to(x.dtype)


def make_norm(cfg: ModelConfig, dim: int | None = None) -> nn.Module:
    """The config's normalisation over `dim` features (default emb_dim)."""
    dim = dim or cfg.emb_dim
    if cfg.norm == "layernorm":
        return LayerNorm(dim, cfg.norm_eps)
    return RMSNorm(dim, cfg.norm_eps, offset=1.0 if cfg.norm == "rmsnorm_offset" else 0.0)
