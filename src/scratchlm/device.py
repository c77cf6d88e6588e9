"""Which device to run on: "auto" picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from scratchlm.errors import ScratchLMError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ScratchLMError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ScratchLMError("--device cuda: no CUDA device is available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ScratchLMError("--device mps: MPS is not available here")
    return device
