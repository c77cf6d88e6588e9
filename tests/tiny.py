"""The suite's one tiny GPT: 2 layers, 32 wide, 2 heads, context 32, no dropout. Tests override only what they
are about (a vocabulary that matches their tokenizer, a longer context, a qkv bias) so that every model-level
test runs in milliseconds and reads the same. The session fixtures beside it (`tiny_corpus`,
`tiny_tokenizer`) live in tests/conftest.py."""

from __future__ import annotations

import torch

from scratchlm.config import ModelConfig, tiny
from scratchlm.model import GPT

TINY_SHAPE = {"n_layers": 2, "emb_dim": 32, "n_heads": 2, "context_length": 32, "dropout": 0.0}


def tiny_config(**overrides) -> ModelConfig:
    """The tiny shape with `overrides` (any ModelConfig field)."""
    return tiny(**{**TINY_SHAPE, **overrides})


def tiny_gpt(seed: int = 0, **overrides) -> GPT:
    """A fresh tiny GPT in eval mode, its weights drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return GPT(tiny_config(**overrides)).eval()
