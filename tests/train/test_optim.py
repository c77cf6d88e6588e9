"""Muon for the hidden matrices, AdamW for the rest, acting as one optimizer: which parameters each takes,
an orthogonalised update, the schedule and momentum warm-up, a state that resumes exactly, fp16 scaling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scratchlm.config import RunConfig, TrainConfig
from scratchlm.data.shards import WindowSampler
from scratchlm.errors import ScratchLMError
from scratchlm.train.loop import train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import MUON_MOMENTUM_START, MuonAdamW, build_optimizer, set_schedule
from scratchlm.train.pretrain import pretrain
from tests.tiny import tiny_gpt

IDS = np.array([i % 7 + (i // 7) % 3 for i in range(2000)], dtype=np.int64)  # a learnable pattern


def muon_cfg(**kwargs) -> TrainConfig:
    return TrainConfig(optimizer="muon", warmup_steps=2, lr=3e-3, min_lr=3e-4, **kwargs)


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    model = tiny_gpt(vocab_size=50, context_length=16, tie_embeddings=False)
    opt = build_optimizer(model, muon_cfg())
    assert isinstance(opt, MuonAdamW)
    muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    adamw = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in muon} == {
        n for n, p in model.named_parameters() if n.startswith("trf_blocks.") and p.dim() == 2
    }
    assert {"emb.tok_emb.weight", "out_head.weight"} <= {names[i] for i in adamw}  # embeddings, head: AdamW
    assert not muon & adamw and len(muon | adamw) == len(list(model.parameters()))
    assert [g["lr_ratio"] for g in opt.muon.param_groups] == [0.02 / 3e-3]


def test_the_muon_update_is_orthogonal():
    """One step on a matrix from rest: the change, over its learning rate and shape factor, has all its
    singular values near 1 (Newton–Schulz's quintic lands them in about [0.7, 1.2]), where the gradient's
    spread over 30x. (Five iterations lift a direction from about 1/500 of the gradient's norm; fainter
    ones stay small: Muon's known approximation.)"""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(64, 32))
    before = weight.detach().clone()
    u, _ = torch.linalg.qr(torch.randn(64, 32))
    v, _ = torch.linalg.qr(torch.randn(32, 32))
    grad = u @ torch.diag(torch.logspace(0, 1.5, 32)) @ v.T  # singular values from 1 to 32
    weight.grad = grad
    lr = 0.02
    torch.optim.Muon([weight], lr=lr, weight_decay=0.0, momentum=0.95).step()
    update = (before - weight.detach()) / (lr * max(1, 64 / 32) ** 0.5)  # Keller's shape factor
    singular = torch.linalg.svdvals(update)
    assert singular.min() > 0.6 and singular.max() < 1.25, singular
    spread = torch.linalg.svdvals(grad)
    assert spread.max() / spread.min() > 30  # the gradient itself was far from orthogonal


def test_schedule_scales_both_and_warms_the_momentum_up():
    model = tiny_gpt(vocab_size=50, context_length=16)
    cfg = muon_cfg(muon_momentum_warmup=10)
    opt = build_optimizer(model, cfg)
    set_schedule(opt, 1e-3, 0, cfg)
    muon, *adamw = opt.param_groups
    assert muon["lr"] == pytest.approx(1e-3 * 0.02 / 3e-3) and all(g["lr"] == 1e-3 for g in adamw)
    assert muon["momentum"] == pytest.approx(MUON_MOMENTUM_START)
    set_schedule(opt, 1e-3, 5, cfg)
    assert muon["momentum"] == pytest.approx((MUON_MOMENTUM_START + 0.95) / 2)
    set_schedule(opt, 1e-3, 50, cfg)
    assert muon["momentum"] == pytest.approx(0.95)


def test_muon_trains_and_its_state_round_trips():
    model = tiny_gpt(vocab_size=50, context_length=16)
    cfg = muon_cfg(max_steps=40, batch_size=8)
    opt = build_optimizer(model, cfg)
    losses = []
    train(model, WindowSampler([IDS], 16, seed=0), next_token_loss, opt, cfg,
          on_step=lambda s, r: losses.append(r.loss))  # fmt: skip
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    state = opt.state_dict()
    again = build_optimizer(model, cfg)
    again.load_state_dict(state)
    buffers = [again.muon.state[p]["momentum_buffer"] for p in again.muon.param_groups[0]["params"]]
    originals = [opt.muon.state[p]["momentum_buffer"] for p in opt.muon.param_groups[0]["params"]]
    assert all(torch.equal(a, b) for a, b in zip(buffers, originals))
    with pytest.raises(ScratchLMError, match="not Muon"):
        again.load_state_dict(build_optimizer(model, TrainConfig()).state_dict())


def test_fp16_scaling_works_through_the_pair():
    model = tiny_gpt(vocab_size=50, context_length=16)
    cfg = muon_cfg(max_steps=3, batch_size=4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    state = train(model, WindowSampler([IDS], 16, seed=0), next_token_loss, build_optimizer(model, cfg), cfg,
                  scaler=scaler)  # fmt: skip
    assert state.step == 3 and all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_settings_are_refused():
    with pytest.raises(ScratchLMError, match="adamw or muon"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ScratchLMError, match="muon_lr"):
        TrainConfig(muon_lr=0)


SETTINGS = {
    "model": {"preset": "tiny", "n_layers": 2, "emb_dim": 32, "n_heads": 2, "context_length": 16},
    "train": {"optimizer": "muon", "muon_momentum_warmup": 6, "batch_size": 4, "warmup_steps": 2}
    | {"decay": "constant", "lr": 2e-3, "log_interval": 1, "eval_interval": 100, "sample_tokens": 2}
    | {"checkpoint_interval": 6, "max_steps": 12},
}


def losses(run) -> dict[int, float]:
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_a_muon_run_resumes_bit_identically(tmp_path, tiny_corpus, tiny_tokenizer):
    """12 steps at once equal 6 steps, a stop, and 6 more after --resume (the constant rate makes the
    first run's schedule the same whether it is told 6 or 12 steps)."""
    settings = {**SETTINGS, "data": {"inputs": [str(tiny_corpus)], "tokenizer": str(tiny_tokenizer)}}
    whole = RunConfig.from_dict(settings)
    pretrain(whole, tmp_path / "whole", show_progress=False)
    half = RunConfig.from_dict({**settings, "train": {**settings["train"], "max_steps": 6}})
    pretrain(half, tmp_path / "split", show_progress=False)
    pretrain(whole, tmp_path / "split", resume=True, show_progress=False)
    expected = losses(tmp_path / "whole")
    assert sorted(expected) == list(range(1, 13))
    assert losses(tmp_path / "split") == expected  # bit-identical floats, step for step


def test_a_lora_fine_tune_with_muon(tmp_path):
    """Every fine-tune takes train.optimizer: LoRA instruction tuning with Muon trains the adapters'
    matrices with Muon (the frozen weights with nothing) and finishes."""
    from scratchlm.config import compose
    from scratchlm.finetune.instruct import finetune_instruct
    from tests.instruct_data import synthetic_records, tiny_model_dir, write_records

    base = tiny_model_dir(tmp_path / "base")
    data = write_records(tmp_path / "data.json", synthetic_records(20))
    cfg = compose(
        "instruct",
        {
            "train": {"init": str(base), "max_steps": 3, "optimizer": "muon", "batch_size": 4, "seed": 0},
            "instruct": {"data": str(data), "split": [0.6, 0.2, 0.2], "max_test": 2},
            "lora": {"rank": 4},
            "generate": {"max_new_tokens": 2},
        },
    )
    outcome = finetune_instruct(cfg, tmp_path / "run", show_progress=False)
    assert outcome.result["steps"] == 3 and outcome.result["parameters"]["share"] < 0.5
    saved = RunConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert saved.train.optimizer == "muon"
