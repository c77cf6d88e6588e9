"""Many processes: joining a `torchrun` job, averaging across processes, and FSDP2 sharding.

Data parallelism (DDP) is what `scratchlm pretrain` does under torchrun: every process holds the whole
model. When the model (with its gradients and AdamW's two moments: 16 bytes per parameter in fp32) does not
fit one device, `shard_model` applies FSDP2 (`torch.distributed.fsdp.fully_shard`): each process keeps
1/N of every parameter, gradient and optimizer moment, and gathers a block's weights just for its forward
and backward. The one training loop runs such a model unchanged (docs/train.md, "Models that do not fit").
"""

from __future__ import annotations

import os

import torch
from torch import nn

from scratchlm.device import pick_device


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def setup_processes(device_name: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under `torchrun` (RANK/WORLD_SIZE/LOCAL_RANK in the environment, its
    protocol), join the process group: NCCL with one GPU per process, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not is_distributed():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return torch.distributed.get_rank(), world, device


def mean_loss_and_tokens(loss_sum: float, tokens: int) -> tuple[float, int]:
    """Mean loss and total tokens over all processes of a distributed run (identity otherwise)."""
    if not is_distributed():
        return loss_sum, tokens
    world = torch.distributed.get_world_size()
    values = torch.tensor([loss_sum, float(tokens)], dtype=torch.float64)
    torch.distributed.all_reduce(values)
    return values[0].item() / world, int(values[1].item())


def rank0_value(value: float, device: torch.device) -> float:
    """Process 0's `value` in every process (e.g. a measured step time, so all agree on max_steps)."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.broadcast(tensor, src=0)
    return tensor.item()


def shard_model(model: nn.Module, reshard_after_forward: bool = True) -> nn.Module:
    """FSDP2: shard each transformer block, then the rest (embeddings, final norm, the tied head) at the
    root, over all processes of the job. Build the optimizer *after* this: it must see the sharded
    parameters. `reshard_after_forward=False` keeps gathered weights between forward and backward (faster,
    more memory)."""
    from torch.distributed.fsdp import fully_shard  # torch >= 2.6

    for block in model.trf_blocks:
        fully_shard(block, reshard_after_forward=reshard_after_forward)
    fully_shard(model, reshard_after_forward=reshard_after_forward)
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole, unsharded weights on CPU (a collective: every process calls it; all get the result)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
