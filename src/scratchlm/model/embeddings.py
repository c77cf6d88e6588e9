"""Stage 3: token ids to vectors. A trainable token embedding plus a learned absolute position embedding
(GPT-2's), then dropout. Knows nothing about attention."""

from __future__ import annotations

import torch
from torch import nn

from scratchlm.config import ModelConfig


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, token_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        # token_ids, position_ids: (B, T) -> (B, T, C); positions broadcast over the batch when (1, T).
        return self.drop(self.tok_emb(token_ids) + self.pos_emb(position_ids))
