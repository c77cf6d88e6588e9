"""Mixed precision in one place: which precision "auto" and "fastest" mean on a device, and the autocast
context the training loop, evaluation and prediction enter."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch

# "fastest" takes bf16 on a CPU only when the measured layer runs at least this much faster in it: the gain
# must pay for bf16's coarser rounding (measured on a CPU with bf16 units: 1.5-1.8x per training step).
BF16_MIN_SPEEDUP = 1.2


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" is bf16 on GPUs that have it, fp32 elsewhere. "fastest" is the same on GPUs and, on a CPU,
    whichever of fp32 and bf16 trains a linear layer faster there (measured once per process: CPUs with
    bf16 units run it ~2x faster, those without ~70x slower)."""
    if precision == "auto" or (precision == "fastest" and device.type != "cpu"):
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fastest":
        return fastest_cpu_precision()
    return precision


PROBE_PASSES = 5  # timed passes of each precision, alternating, after two of each as a warm-up


@functools.cache
def fastest_cpu_precision() -> str:
    """fp32 or bf16: which runs a small model's linear layer (2048 × 256 @ 256 × 768, a batch of 16 × 128
    tokens; forward and backward) faster on this CPU, measured once per process. The passes alternate, so a
    busy machine slows both alike, and the fastest of each counts. On a CPU without bf16 units the two
    warm-up passes already tell (~70x slower) and the probe stops there."""
    gen = torch.Generator().manual_seed(0)  # its own: measuring must not move the run's random state
    x = torch.randn(2048, 256, generator=gen)
    w = torch.randn(768, 256, generator=gen, requires_grad=True)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(2 + PROBE_PASSES):
        for precision in times:
            times[precision].append(_linear_pass(x, w, precision))
        if i == 1 and min(times["bf16"]) > 5 * min(times["fp32"]):
            return "fp32"
    fp32, bf16 = min(times["fp32"][2:]), min(times["bf16"][2:])
    return "bf16" if bf16 * BF16_MIN_SPEEDUP <= fp32 else "fp32"


def _linear_pass(x: torch.Tensor, w: torch.Tensor, precision: str) -> float:
    """Seconds of one forward + backward of x @ w.T in `precision` (bf16: under autocast)."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        y = torch.nn.functional.linear(x, w)
    y.float().sum().backward()
    return time.perf_counter() - t0


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for `precision` (fp32: none) on `device`."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
