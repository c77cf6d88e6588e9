"""AdamW with GPT-2's two parameter groups: weight decay on matrices (linear weights, embeddings), none on
biases and LayerNorm parameters. Uses the fused kernel where the build has it."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from scratchlm.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    unique = list({id(p): p for p in params}.values())  # a tied head is one parameter
    decay = [p for p in unique if p.dim() >= 2]
    no_decay = [p for p in unique if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel runs on CUDA and (torch >= 2.4) on CPUs: on gpt2-small's CPU step it takes the
    # optimizer from 0.36 s to 0.08 s (benchmarks/bench_train.py notes); older builds fall back to foreach.
    extra = {"fused": True} if "fused" in inspect.signature(torch.optim.AdamW).parameters else {}
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, **extra)
    except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not support
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, foreach=True)
