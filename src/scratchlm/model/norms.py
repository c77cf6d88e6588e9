"""Normalisation layers: GPT-2's LayerNorm and the modern families' RMSNorm (also used per attention head
for Qwen3's QK-norm). Apart from `blocks.py` so that attention can use them too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    without the mean and the shift. Computed in fp32 and cast back before the gain, as Llama does."""

    def __init__(self, emb_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.scale * x32.to(x.dtype)
