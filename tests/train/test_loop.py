"""The one training loop: the loss falls, accumulation equals a big batch, non-finite steps are skipped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scratchlm.config import TrainConfig
from scratchlm.data.shards import WindowSampler
from scratchlm.train.loop import NonFiniteTraining, train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer
from tests.tiny import tiny_gpt


def setup(seed=0, **train_kwargs):
    model = tiny_gpt(seed, vocab_size=50, context_length=16)
    cfg = TrainConfig(warmup_steps=2, lr=3e-3, min_lr=3e-4, **train_kwargs)
    ids = np.array([i % 7 + (i // 7) % 3 for i in range(2000)], dtype=np.int64)  # a learnable pattern
    return model, build_optimizer(model, cfg), cfg, WindowSampler([ids], 16, seed=seed)


def test_loss_falls():
    model, opt, cfg, data = setup(max_steps=60, batch_size=8)
    losses = []
    train(model, data, next_token_loss, opt, cfg, on_step=lambda s, r: losses.append(r.loss))
    assert len(losses) == 60
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_optimizer_groups_decay_matrices_only():
    model, opt, cfg, _ = setup()
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == cfg.weight_decay and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == model.num_parameters()  # the tied head is counted once


def test_non_finite_steps_are_skipped_then_raise():
    model, opt, cfg, data = setup(max_steps=10, max_bad_steps=3)
    calls = {"n": 0}

    def poisoned(m, batch):
        calls["n"] += 1
        loss = next_token_loss(m, batch)
        return loss * math.nan if calls["n"] >= 4 else loss

    before = {k: v.clone() for k, v in model.state_dict().items()}
    skipped = []
    with pytest.raises(NonFiniteTraining, match="3 steps in a row"):
        train(model, data, poisoned, opt, cfg, on_step=lambda s, r: skipped.append(r.skipped))
    assert skipped == [False, False, False, True, True, True]
    after = model.state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    assert changed  # the three good steps updated the weights...
    assert all(torch.isfinite(v).all() for v in after.values())  # ...and no NaN ever reached them


def test_fp16_loss_scaling_skips_overflows_without_counting_them_as_bad():
    model, opt, cfg, data = setup(max_steps=30, batch_size=8, max_bad_steps=1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # overflows at first: the scale must come down
    results = []
    autocast = lambda: torch.autocast("cpu", dtype=torch.float16)  # noqa: E731
    train(
        model,
        data,
        next_token_loss,
        opt,
        cfg,
        autocast=autocast,
        scaler=scaler,
        on_step=lambda s, r: results.append(r),
    )
    skipped = [r.skipped for r in results]
    assert skipped[0] and not skipped[-1]  # overflowing steps skipped, no NonFiniteTraining raised
    assert scaler.get_scale() < 2.0**40
    assert np.mean([r.loss for r in results[-5:]]) < np.mean([r.loss for r in results[:5]])


def test_fp16_scaler_still_counts_a_non_finite_loss():
    model, opt, cfg, data = setup(max_steps=10, max_bad_steps=2)
    scaler = torch.amp.GradScaler("cpu")
    nan_loss = lambda m, batch: next_token_loss(m, batch) * math.nan  # noqa: E731
    with pytest.raises(NonFiniteTraining, match="2 steps in a row"):
        train(model, data, nan_loss, opt, cfg, scaler=scaler)
