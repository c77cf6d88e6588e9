"""Losses as functions of (model, batch): the one training loop calls them and knows nothing else."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def next_token_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of next-token prediction; targets equal to -100 are ignored (padding, prompts)."""
    inputs, targets = batch
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)


def perplexity(loss: float) -> float:
    """exp(mean loss in nats per token); capped to stay finite in logs."""
    return math.exp(min(loss, 80.0))


def bits_per_byte(loss: float, tokens_per_byte: float) -> float:
    """Nats per token to bits per UTF-8 byte of text: comparable across tokenizers.

    >>> round(bits_per_byte(math.log(2), 1.0), 6)
    1.0
    """
    return loss * tokens_per_byte / math.log(2)
