"""The modern small-model recipe's own parts (issue 27): the ReLU² MLP, zero-initialised residual
projections and value embeddings, each a switch, and the `modern-cpu` preset that puts them together with
the families' parts (rotary positions, RMSNorm, QK-norm, an untied head, soft-capped logits)."""

from __future__ import annotations

import dataclasses

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
from scratchlm.train.optim import build_optimizer, split_for_muon
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
        {"value_embeddings": 2},
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


def test_value_embeddings_are_mixed_into_the_values_of_the_first_and_last_layers(monkeypatch):
    cfg = tiny_config(vocab_size=97, n_layers=6, value_embeddings=2, n_kv_heads=1)
    assert [cfg.value_table(layer) for layer in range(6)] == [0, 1, None, None, 0, 1]
    model = GPT(cfg).eval()
    assert parameter_count(cfg) == model.num_parameters()
    assert parameter_count(cfg) - parameter_count(tiny_config(vocab_size=97, n_layers=6, n_kv_heads=1)) == (
        2 * 97 * 16 + 4 * 2  # two tables of vocab x the key/value width (one head of 16), 2 weights per layer
    )
    assert flops_per_token(cfg) == flops_per_token(tiny_config(vocab_size=97, n_layers=6, n_kv_heads=1))
    assert [b.att.ve_mix is not None for b in model.trf_blocks] == [True, True, False, False, True, True]
    assert all(torch.equal(b.att.ve_mix, torch.full((2,), 0.5)) for b in model.trf_blocks[:2])

    # With the mix at (1, 0) the model is the same model without value embeddings; with (a, b), the values
    # of the tokens are a * v + b * table[token] exactly.
    plain = GPT(tiny_config(vocab_size=97, n_layers=6, n_kv_heads=1)).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        for block in model.trf_blocks[:2] + model.trf_blocks[4:]:
            block.att.ve_mix.copy_(torch.tensor([1.0, 0.0]))
        assert torch.allclose(model(ids), plain(ids), atol=1e-6)
        block = model.trf_blocks[1].att
        block.ve_mix.copy_(torch.tensor([0.7, 0.3]))
        x = torch.randn(2, 9, cfg.emb_dim)
        ve = model.value_embs[1](ids)
        _, _, v = block.qkv(x).split(block.sizes, dim=2)
        seen, original = {}, F.scaled_dot_product_attention

        def spy(q, k, v, **kwargs):
            seen["v"] = v
            return original(q, k, v, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(F, "scaled_dot_product_attention", spy)
            block(x, ve=ve)
        mixed = (0.7 * v + 0.3 * ve).view(2, 9, 1, 16).transpose(1, 2)
        assert torch.allclose(seen["v"], mixed, atol=1e-6)
        assert not torch.allclose(model(ids), plain(ids), atol=1e-3)  # and the tables do change the output
    with pytest.raises(ValueError, match="ve"):
        block(x)


def test_value_embeddings_train_with_adamw_in_bf16_and_round_trip(tmp_path):
    from scratchlm.formats.model_files import export_hf, load_model, save_model

    cfg = preset("modern-cpu", vocab_size=61, context_length=16, emb_dim=48, n_heads=4, value_embeddings=1)
    cfg = dataclasses.replace(cfg, zero_init_residual=False)  # (zero projections pass no gradient back yet)
    torch.manual_seed(0)
    model = GPT(cfg)
    hidden, rest = split_for_muon(model)
    assert any(p is model.value_embs[0].weight for p in rest)  # an embedding: AdamW's, not Muon's
    assert not any(p is model.value_embs[0].weight for p in hidden)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the tables are fp32, the values bf16
        loss = next_token_loss(model, (torch.randint(0, 61, (2, 16)), torch.randint(0, 61, (2, 16))))
    loss.backward()
    assert model.value_embs[0].weight.grad.abs().sum() > 0
    assert model.trf_blocks[-1].att.ve_mix.grad is not None
    save_model(model.eval(), tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert loaded.cfg.value_embeddings == 1
    ids = torch.randint(0, 61, (1, 10))
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    with pytest.raises(ScratchLMError, match="value_embeddings"):
        export_hf(model, tmp_path / "hf")
    with pytest.raises(ScratchLMError, match="value_embeddings"):
        ModelConfig(n_layers=4, value_embeddings=3)  # a table for the first and the last 3 of 4 layers
