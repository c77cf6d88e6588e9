"""LoRA (Hu et al. 2021): freeze a pretrained weight W and learn a low-rank change B A beside it.

    y = x Wᵀ + b + (dropout(x) Aᵀ Bᵀ) · alpha / rank        A: (rank, in), B: (out, rank), B starts at 0

so training starts exactly from the pretrained model. Scaling, initialisation (A Kaiming-uniform with a=√5,
B zeros) and tensor shapes follow PEFT, so adapters move to and from PEFT's format unchanged
(`scratchlm.interop.peft`). `merge_lora` folds B A into W for inference at no extra cost; `unmerge_lora`
takes it out again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import torch
from torch import nn

from scratchlm.config import DEFAULT_TARGETS, TARGETS, LoRAConfig  # noqa: F401 (re-exported)
from scratchlm.errors import ScratchLMError


class LoRALinear(nn.Module):
    """An `nn.Linear` (kept as `.base`, frozen) plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / (math.sqrt(rank) if rslora else rank)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear and PEFT initialise A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def weight(self) -> torch.Tensor:  # so code that reads `.weight` (tied heads, exports) still works
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}, merged={self.merged}"


# A gated MLP (SwiGLU, GeGLU) has two input projections and names its output `down`.
SWIGLU_TARGETS = {"ff_in": ("ff.gate", "ff.up"), "ff_out": ("ff.down",)}


def _block_paths(model: nn.Module, target: str) -> tuple[str, ...]:
    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "mlp", "gelu") in ("swiglu", "geglu") and target in SWIGLU_TARGETS:
        return SWIGLU_TARGETS[target]
    return (TARGETS[target],)


def lora_paths(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """The dotted names of the Linear modules `cfg` targets in `model` (a scratchlm GPT)."""
    paths = []
    n_blocks = len(model.trf_blocks)
    layers = range(n_blocks) if cfg.layers is None else cfg.layers
    for i in layers:
        if not 0 <= i < n_blocks:
            raise ScratchLMError(f"lora.layers: block {i} does not exist (the model has {n_blocks})")
        paths += [
            f"trf_blocks.{i}.{path}" for t in cfg.targets if t != "head" for path in _block_paths(model, t)
        ]
    if "head" in cfg.targets:
        paths.append(TARGETS["head"])
    return paths


def apply_lora(model: nn.Module, cfg: LoRAConfig | None = None, **kwargs) -> dict:
    """Freeze every parameter of `model`, then put a LoRA update on each targeted Linear (in place).
    Returns the report of `trainable_report`. `kwargs` build the config: `apply_lora(m, rank=4)`."""
    cfg = cfg or LoRAConfig(**kwargs)
    for p in model.parameters():
        p.requires_grad_(False)
    for path in lora_paths(model, cfg):
        parent_name, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        base = getattr(parent, name)
        if isinstance(base, LoRALinear):
            raise ScratchLMError(f"{path} already has LoRA: load or merge the existing adapter first")
        if not isinstance(base, nn.Linear):
            raise ScratchLMError(
                f"{path} is a {type(base).__name__}, not a Linear layer: LoRA cannot wrap it"
            )
        setattr(parent, name, LoRALinear(base, cfg.rank, cfg.alpha, cfg.dropout, cfg.rslora))
    model.lora_config = cfg
    return trainable_report(model)


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter: `<path>.lora_A` / `<path>.lora_B` for each LoRA layer."""
    return {
        f"{name}.{part}": getattr(m, part).detach().clone()
        for name, m in lora_modules(model).items()
        for part in ("lora_A", "lora_B")
    }


def load_lora_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy adapter tensors into a model that `apply_lora` prepared, every key accounted for."""
    modules = lora_modules(model)
    expected = {f"{name}.{part}" for name in modules for part in ("lora_A", "lora_B")}
    missing, unexpected = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
    if missing or unexpected:
        raise ScratchLMError(
            f"the adapter does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    with torch.no_grad():
        for key, tensor in tensors.items():
            name, _, part = key.rpartition(".")
            target = getattr(modules[name], part)
            if target.shape != tensor.shape:
                raise ScratchLMError(
                    f"adapter tensor {key} has shape {tuple(tensor.shape)}, "
                    f"the model needs {tuple(target.shape)}"
                )
            target.copy_(tensor)


def merge_lora(model: nn.Module, unload: bool = False) -> nn.Module:
    """Fold every LoRA update into its base weight. With `unload`, replace each LoRALinear by its merged
    plain Linear (a model with no trace of LoRA, e.g. to export); otherwise `unmerge_lora` can undo it.

    A head tied to the token embedding is untied first (it gets its own copy of the matrix, and the model's
    config says `tie_embeddings: False`): merging into the shared matrix would change the embeddings too."""
    for name, m in lora_modules(model).items():
        if _is_shared(model, m.base.weight):
            m.base.weight = nn.Parameter(m.base.weight.detach().clone(), requires_grad=False)
            if getattr(getattr(model, "cfg", None), "tie_embeddings", False):
                model.cfg = dataclasses.replace(model.cfg, tie_embeddings=False)
        m.merge()
        if unload:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, m.base)
    if unload and hasattr(model, "lora_config"):
        del model.lora_config
    return model


def _is_shared(model: nn.Module, weight: torch.Tensor) -> bool:
    return sum(p is weight for _, p in model.named_parameters(remove_duplicate=False)) > 1


def unmerge_lora(model: nn.Module) -> nn.Module:
    for m in lora_modules(model).values():
        m.unmerge()
    return model


def trainable_report(model: nn.Module) -> dict:
    """Trainable vs total parameters (a tied head counted once), as PEFT's print_trainable_parameters."""
    unique = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in unique)
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    return {"trainable": trainable, "total": total, "share": trainable / total if total else 0.0}


def mark_trainable(model: nn.Module, prefixes: Iterable[str]) -> None:
    """Unfreeze the parameters whose names start with one of `prefixes` (e.g. a new classifier head)."""
    prefixes = tuple(prefixes)
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            p.requires_grad_(True)
