"""The classifier head: the book's chapter-6 surgery on a GPT, and reading it at the last real token.

A classifier is the same GPT with `out_head` (emb_dim → vocab_size) replaced by a Linear emb_dim →
num_classes with a bias. Knows nothing about labels, data or training.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from scratchlm.model.gpt import GPT


def add_classifier_head(model: GPT, num_classes: int, generator: torch.Generator | None = None) -> GPT:
    """Replace `model.out_head` by a fresh Linear(emb_dim, num_classes) with a bias (in place).

    The new head is initialised as `nn.Linear` initialises itself (Kaiming-uniform weight, uniform bias in
    ±1/sqrt(emb_dim)), but from `generator`, so a seed alone decides it. A tied head is untied by the
    replacement, and the config says so: `tie_embeddings` is a property of the vocabulary head only.
    """
    old = model.out_head.weight
    head = nn.Linear(model.cfg.emb_dim, num_classes, bias=True, device=old.device, dtype=old.dtype)
    with torch.no_grad():
        nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(model.cfg.emb_dim)
        head.bias.uniform_(-bound, bound, generator=generator)
    model.out_head = head
    model.cfg = dataclasses.replace(model.cfg, tie_embeddings=False)
    return model


def last_token_logits(logits: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
    """(B, T, C) logits → (B, C): each row's logits at its last real token.

    Rows are padded on the right, so the last real token sits at a different position in each row; under
    causal attention it never sees the padding after it, so padding cannot change what is read here.

    >>> logits = torch.arange(12.0).reshape(2, 3, 2)
    >>> last_token_logits(logits, torch.tensor([0, 2])).tolist()
    [[0.0, 1.0], [10.0, 11.0]]
    """
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, last_index]


def classify_logits(model: GPT, token_ids: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
    """Class logits (B, num_classes) of right-padded `token_ids` (B, T)."""
    return last_token_logits(model(token_ids), last_index)
