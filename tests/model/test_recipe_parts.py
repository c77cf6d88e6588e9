"""The modern small-model recipe's own parts (issue 27): the ReLU² MLP and zero-initialised residual
projections, each a switch, and the `modern-cpu` preset that puts them together with the families' parts
(rotary positions, RMSNorm, QK-norm, an untied head, soft-capped logits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scratchlm.config import ModelConfig, TrainConfig, preset
from scratchlm.data.shards import WindowSampler
from scratchlm.errors import ScratchLMError
from scratchlm.generate.generate import generate
from scratchlm.model import GPT, KVCache
from scratchlm.model.blocks import FeedForward, ReLUSquared
from scratchlm.model.lora import apply_lora, lora_modules
from scratchlm.model.sizing import flops_per_token, parameter_count
from scratchlm.train.loop import train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer
from tests.tiny import tiny_config, tiny_gpt


def test_relu_squared_mlp_is_down_of_relu_up_squared():
    cfg = tiny_config(mlp="relu2")
    ff = FeedForward(cfg)
    assert isinstance(ff.layers[1], ReLUSquared)
    x = torch.randn(2, 5, cfg.emb_dim)
    up, down = ff.layers[0], ff.layers[2]
    assert torch.allclose(ff(x), down(F.relu(up(x)) ** 2), atol=1e-6)
    assert parameter_count(cfg) == GPT(cfg).num_parameters()
    assert flops_per_token(cfg) == flops_per_token(tiny_config(mlp="gelu"))  # same matrices as GELU's


def test_zero_initialised_blocks_start_as_the_identity():
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=97, zero_init_residual=True, tie_embeddings=False)).eval()
    outputs = [linear for block in model.trf_blocks for linear in block.residual_outputs]
    assert outputs and all(not linear.weight.any() for linear in outputs)
    ids = torch.randint(0, 97, (2, 7))
    with torch.no_grad():
        through_blocks = model(ids)
        skipped = model.out_head(model.final_norm(model.emb(ids, torch.arange(7)[None])))  # no blocks
    assert torch.allclose(through_blocks, skipped, atol=1e-6)
    others = [block.att.qkv.weight for block in model.trf_blocks]
    assert all(w.std() > 0.01 for w in others)  # the rest as GPT-2's initialisation
    plain = GPT(tiny_config(vocab_size=97)).trf_blocks[0].att.out_proj.weight
    assert plain.any()  # off by default


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"mlp": "gelu"},
        {"qk_norm": False},
        {"logit_softcap": None},
        {"tie_embeddings": True},
        {"zero_init_residual": False},
        {"positions": "learned"},
    ],
)
def test_the_preset_with_each_part_switched_decodes_as_the_full_pass(change):
    """Each part of modern-cpu can be turned off alone, and the model stays exact: cached decoding equals
    the full pass."""
    cfg = preset("modern-cpu", vocab_size=97, context_length=32, emb_dim=48, n_heads=4, **change)
    torch.manual_seed(1)
    model = GPT(cfg).eval()
    for block in model.trf_blocks:  # give the zero-initialised projections something to do
        for linear in block.residual_outputs:
            torch.nn.init.normal_(linear.weight, std=0.02)
    x = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        full = model(x)
        cache = KVCache.for_model(cfg, batch_size=2)
        pieces = torch.cat([model(x[:, :5], kv_cache=cache), model(x[:, 5:], kv_cache=cache)], dim=1)
    assert torch.allclose(pieces, full, atol=1e-5)
    assert torch.equal(
        generate(model, x, max_new_tokens=6), generate(model, x, max_new_tokens=6, use_cache=False)
    )
    if cfg.logit_softcap:
        assert full.abs().max() < cfg.logit_softcap


def test_the_preset_is_the_recipe_and_learns_with_muon():
    cfg = preset("modern-cpu", vocab_size=50, context_length=16)
    assert (cfg.positions, cfg.norm, cfg.mlp, cfg.qk_norm) == ("rope", "rmsnorm", "relu2", True)
    assert not cfg.tie_embeddings and cfg.zero_init_residual and cfg.logit_softcap == 15.0
    assert (cfg.n_layers, cfg.emb_dim, cfg.n_heads, cfg.bias, cfg.dropout) == (4, 192, 6, False, 0.0)
    torch.manual_seed(0)
    model = GPT(cfg)
    ids = np.array([i % 7 + (i // 7) % 3 for i in range(2000)], dtype=np.int64)
    train_cfg = TrainConfig(optimizer="muon", max_steps=30, batch_size=8, warmup_steps=2, lr=3e-3)
    losses = []
    train(model, WindowSampler([ids], 16, seed=0), next_token_loss, build_optimizer(model, train_cfg),
          train_cfg, on_step=lambda s, r: losses.append(r.loss))  # fmt: skip
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    apply_lora(model, rank=2, targets=("qkv", "ff_in", "ff_out"))  # ReLU²'s layers are GELU's
    names = sorted(n.split(".", 2)[2] for n in lora_modules(model))
    assert names == sorted(["att.qkv", "ff.layers.0", "ff.layers.2"] * cfg.n_layers)


def test_relu_squared_is_not_a_hugging_face_family():
    from scratchlm.formats.model_files import export_hf

    with pytest.raises(ScratchLMError):
        export_hf(tiny_gpt(mlp="relu2"), "/nonexistent/never-written")
    with pytest.raises(ScratchLMError, match="mlp"):
        ModelConfig(mlp="relu3")
