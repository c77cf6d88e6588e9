"""Stage 3: token ids to vectors. A trainable token embedding plus a learned absolute position embedding
(GPT-2's), then dropout. Knows nothing about attention. With rotary positions (`rope.py`) there is no
position embedding: positions enter inside attention instead. Gemma scales the token embeddings by
sqrt(emb_dim) (`emb_scale`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from scratchlm.config import ModelConfig


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim) if cfg.positions == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.scale = math.sqrt(cfg.emb_dim) if cfg.emb_scale else None

    def forward(self, token_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        # token_ids, position_ids: (B, T) -> (B, T, C); positions broadcast over the batch when (1, T).
        x = self.tok_emb(token_ids)
        if self.scale is not None:  # Gemma: x sqrt(emb_dim), the factor rounded to the weights' dtype first
            x = x * torch.tensor(self.scale, dtype=torch.float32).to(x.dtype)
        if self.pos_emb is not None:
            x = x + self.pos_emb(position_ids)
        return self.drop(x)
