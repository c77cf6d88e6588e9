"""The learning-rate schedule: linear warmup, then cosine (or linear, or no) decay to a floor. Pure."""

from __future__ import annotations

import math

from scratchlm.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based).

    >>> from scratchlm.config import TrainConfig
    >>> cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    >>> [round(lr_at(s, cfg), 3) for s in (0, 4, 9, 10, 60, 110, 500)]
    [0.1, 0.5, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.decay == "constant" or step >= cfg.max_steps:
        return cfg.lr if cfg.decay == "constant" else cfg.lr_floor
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    if cfg.decay == "linear":
        factor = 1.0 - progress
    else:  # cosine (Loshchilov & Hutter 2017, without restarts)
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.lr_floor + factor * (cfg.lr - cfg.lr_floor)
