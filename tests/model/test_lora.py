"""LoRA: starts as the base model, trains only the adapter, merges and unmerges exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scratchlm.config import TrainConfig
from scratchlm.data.shards import WindowSampler
from scratchlm.errors import ScratchLMError
from scratchlm.model.lora import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    load_lora_state_dict,
    lora_state_dict,
    merge_lora,
    unmerge_lora,
)
from scratchlm.train.loop import train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer
from tests.tiny import tiny_gpt


def model(seed=0):
    return tiny_gpt(seed, vocab_size=60, context_length=16)


def randomize_b(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.05)


X = torch.randint(0, 60, (3, 16), generator=torch.Generator().manual_seed(1))


def test_fresh_adapter_changes_nothing_and_freezes_the_base():
    m = model()
    before = m(X)
    report = apply_lora(m, rank=4, alpha=8, targets=("qkv", "out_proj", "ff_in", "ff_out", "head"))
    assert torch.equal(m(X), before)  # B starts at zero
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    # 2 blocks × (qkv 32→96, out 32→32, ff_in 32→128, ff_out 128→32) + head 32→60, rank 4 each
    expected = 2 * 4 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32)) + 4 * (32 + 60)
    assert report["trainable"] == expected
    assert report["total"] == report["trainable"] + model().num_parameters()


@pytest.mark.parametrize("rslora", [False, True])
def test_merged_equals_unmerged_and_unmerge_restores(rslora):
    m = model()
    base = {k: v.clone() for k, v in m.state_dict().items()}
    apply_lora(m, rank=4, alpha=16, rslora=rslora, targets=("qkv", "ff_out", "head"))
    randomize_b(m)
    with torch.no_grad():
        unmerged = m(X)
        merge_lora(m)
        merged = m(X)
        assert (unmerged - merged).abs().max() <= 1e-5
        assert not torch.equal(unmerged, model()(X))  # the adapter does something
        unmerge_lora(m)
        assert (m(X) - unmerged).abs().max() <= 1e-5
    restored = {k.replace(".base.", "."): v for k, v in m.state_dict().items() if "lora_" not in k}
    assert all((restored[k] - base[k]).abs().max() <= 1e-6 for k in base)


def test_merge_and_unload_leaves_a_plain_gpt():
    m = model()
    apply_lora(m, rank=2, alpha=4)
    randomize_b(m)
    with torch.no_grad():
        expected = m(X)
        merge_lora(m, unload=True)
        assert not any(isinstance(x, LoRALinear) for x in m.modules())
        assert (m(X) - expected).abs().max() <= 1e-5
    plain = model()
    plain.load_state_dict(m.state_dict())  # the usual keys again


def test_scaling_follows_peft():
    assert LoRAConfig(rank=8, alpha=16).scaling == 2.0
    assert LoRAConfig(rank=16, alpha=8, rslora=True).scaling == 2.0


def test_only_the_adapter_trains():
    m = model()
    apply_lora(m, rank=4, alpha=8)
    m.train()
    frozen = {n: p.clone() for n, p in m.named_parameters() if not p.requires_grad}
    cfg = TrainConfig(max_steps=30, batch_size=8, warmup_steps=2, lr=1e-2, min_lr=1e-3)
    ids = np.array([i % 7 + (i // 7) % 3 for i in range(2000)], dtype=np.int64)
    losses = []
    opt = build_optimizer(m, cfg)
    train(m, WindowSampler([ids], 16), next_token_loss, opt, cfg, on_step=lambda s, r: losses.append(r.loss))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert all(torch.equal(p, frozen[n]) for n, p in m.named_parameters() if n in frozen)


def test_adapter_state_round_trip():
    a, b = model(), model()
    apply_lora(a, rank=3, alpha=6)
    randomize_b(a)
    apply_lora(b, rank=3, alpha=6)
    load_lora_state_dict(b, lora_state_dict(a))
    with torch.no_grad():
        assert torch.equal(a(X), b(X))
    c = model()
    apply_lora(c, rank=5, alpha=6)
    with pytest.raises(ScratchLMError, match="shape"):
        load_lora_state_dict(c, lora_state_dict(a))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ScratchLMError, match="unknown"):
        LoRAConfig(targets=("attention",))
    with pytest.raises(ScratchLMError, match="rank"):
        LoRAConfig(rank=0)
    with pytest.raises(ScratchLMError, match="block 7"):
        apply_lora(model(), layers=(7,))
    m = model()
    apply_lora(m)
    with pytest.raises(ScratchLMError, match="already has LoRA"):
        apply_lora(m)
