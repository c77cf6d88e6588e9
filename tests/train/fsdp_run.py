"""Run by test_distributed.py under `torch.distributed.run`, or alone as one process: a few steps of the
one training loop on a tiny GPT, FSDP2-sharded when there are several processes; rank 0 writes the losses
and a sum per tensor of the full (gathered) weights to the JSON file named by argv[1]."""

import json
import sys

import numpy as np
import torch

from scratchlm.config import TrainConfig, tiny
from scratchlm.data.shards import WindowSampler
from scratchlm.model import GPT
from scratchlm.train.distributed import full_state_dict, setup_processes, shard_model
from scratchlm.train.loop import train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer

out, global_batch = sys.argv[1], 8
rank, world, _ = setup_processes("cpu")
torch.manual_seed(0)
model = GPT(tiny(vocab_size=50, context_length=16, n_layers=2, emb_dim=32, n_heads=2, dropout=0.0))
if world > 1:
    shard_model(model)
cfg = TrainConfig(max_steps=6, batch_size=global_batch // world, warmup_steps=2, lr=3e-3, min_lr=3e-4)
optimizer = build_optimizer(model, cfg)
ids = np.array([i % 7 + (i // 7) % 3 for i in range(2000)], dtype=np.int64)
data = WindowSampler([ids], 16, seed=0)
data.rank, data.world_size = rank, world
losses = []
train(model, data, next_token_loss, optimizer, cfg, on_step=lambda s, r: losses.append(r.loss))
weights = full_state_dict(model) if world > 1 else model.state_dict()
shard = next(p for p in model.parameters() if p.dim() == 2)
local = shard.to_local() if hasattr(shard, "to_local") else shard
if rank == 0:
    record = {
        "losses": losses,
        "weights": {k: v.double().sum().item() for k, v in weights.items()},
        "local_rows": local.shape[0],
        "full_rows": weights[next(k for k, v in weights.items() if v.dim() == 2)].shape[0],
    }
    with open(out, "w") as f:
        json.dump(record, f)
if world > 1:  # every rank done with every collective before the group goes (else gloo may abort)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
