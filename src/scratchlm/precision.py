"""Mixed precision in one place: which precision "auto" means on a device, and the autocast context the
training loop, evaluation and prediction enter."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" is bf16 on GPUs that have it, fp32 elsewhere (CPUs without fast bf16, like this project's)."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for `precision` (fp32: none) on `device`."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
