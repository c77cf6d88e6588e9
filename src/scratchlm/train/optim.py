"""The optimizers of every run: AdamW with GPT-2's two parameter groups (weight decay on matrices, none on
biases and norms), or Muon for the hidden matrices with AdamW for the rest.

Muon (Jordan et al. 2024; PyTorch's own `torch.optim.Muon`) keeps SGD momentum for each 2-D weight inside
the transformer blocks and replaces the step by the nearest orthogonal matrix to it (five Newton–Schulz
iterations): every direction of the matrix moves by about the same amount, however lopsided the gradient.
It only suits hidden matrices; embeddings, the output head, norms and biases stay with AdamW. The two act as
one optimizer here (`MuonAdamW`): one step, one zero_grad, one state dict in the checkpoint, and the
learning-rate schedule scales both (Muon's groups carry their own rate as a ratio to AdamW's).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from scratchlm.config import TrainConfig
from scratchlm.errors import ScratchLMError

MUON_MOMENTUM_START = 0.85  # momentum warms up from here to train.muon_momentum (modded-nanogpt's recipe)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | MuonAdamW:
    """The optimizer `cfg.optimizer` names, over the model's trainable parameters."""
    if cfg.optimizer == "muon":
        hidden, rest = split_for_muon(model)
        muon = torch.optim.Muon(
            [{"params": hidden, "lr_ratio": cfg.muon_lr / cfg.lr}],
            lr=cfg.muon_lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.muon_momentum,
            nesterov=True,
        )
        return MuonAdamW(muon, adamw(rest, cfg))
    return adamw(_trainable(model), cfg)


def adamw(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW, weight decay on the matrices only."""
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # The fused kernel runs on CUDA and (torch >= 2.4) on CPUs: on gpt2-small's CPU step it takes the
    # optimizer from 0.36 s to 0.08 s (benchmarks/bench_train.py notes); older builds fall back to foreach.
    extra = {"fused": True} if "fused" in inspect.signature(torch.optim.AdamW).parameters else {}
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, **extra)
    except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not support
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, foreach=True)


def split_for_muon(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(Muon's, AdamW's): the 2-D weights inside the transformer blocks, and everything else (embeddings,
    the output or classifier head, norms, biases). A tied head is one parameter, with the embedding."""
    hidden, rest, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        in_block = ".trf_blocks." in f".{name}"
        (hidden if in_block and p.dim() == 2 else rest).append(p)
    return hidden, rest


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return list({id(p): p for p in model.parameters() if p.requires_grad}.values())


def set_schedule(optimizer, lr: float, step: int, cfg: TrainConfig) -> None:
    """The step's learning rate on every group (Muon's groups: times their ratio), and Muon's momentum
    warm-up over train.muon_momentum_warmup steps."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_ratio", 1.0)
        if "lr_ratio" in group:  # a Muon group
            frac = min(1.0, step / cfg.muon_momentum_warmup) if cfg.muon_momentum_warmup else 1.0
            group["momentum"] = MUON_MOMENTUM_START + frac * (cfg.muon_momentum - MUON_MOMENTUM_START)


class MuonAdamW:
    """Muon and AdamW as one optimizer: what the loop, the GradScaler and the checkpoint use of one."""

    def __init__(self, muon: torch.optim.Muon, adamw: torch.optim.AdamW) -> None:
        self.muon, self.adamw = muon, adamw
        self.optimizers = (muon, adamw)

    @property
    def param_groups(self) -> list[dict]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"muon", "adamw"}:
            raise ScratchLMError(
                "the checkpoint's optimizer is not Muon + AdamW: resume with its own optimizer"
            )
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])
