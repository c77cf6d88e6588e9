"""How fast training runs against what the device can do: peak FLOP/s, model FLOPs utilisation (MFU), and
a CPU allocator setting that keeps big activations from being page-faulted in again at every step.

MFU = achieved model FLOP/s / peak FLOP/s, with the model FLOPs of `scratchlm.model.sizing.flops_per_token`
(6 N per token plus attention, as in the PaLM paper's appendix B). The peak is the vendor's dense figure for
the GPUs listed below in the run's precision, otherwise a matmul measured on the device in the run's dtype.
"""

from __future__ import annotations

import ctypes
import dataclasses
import statistics
import sys
import time

import torch

from scratchlm.precision import autocast

# Dense (no sparsity) tensor-core peaks in FLOP/s for bf16/fp16, from the vendors' data sheets.
GPU_PEAKS_16BIT = {
    "H200": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM ("NVIDIA H100 80GB HBM3")
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,  # fp16 only
    "T4": 65e12,  # fp16 only
}


# Bounds on the matmul probe, so that it is quick on every device and dtype (fp16 runs at ~3 GFLOP/s on a CPU
# without fp16 units: one 2048^2 fp16 matmul there takes seconds, a 2048^2 probe of 6 of them minutes).
PROBE_MATMUL_SECONDS = 0.3  # grow the size only while the next size's matmul should take less than this
PROBE_SECONDS = 1.0  # and only while the probe has taken less than this in all
PROBE_REPEATS = 5  # timed repeats at a size after its warm-up: at most these, and none after 0.3 s of them


def matmul_peak_flops(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, n: int = 0
) -> float:
    """FLOP/s of `matmul_probe` (see there)."""
    return matmul_probe(device, dtype, n)[0]


def matmul_probe(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, n: int = 0
) -> tuple[float, int]:
    """(FLOP/s, the size n it was measured at): FLOP/s of an (n, n) @ (n, n) matmul (2 n^3 FLOPs) on
    `device` in `dtype`, the best of up to 5 timed repeats after a warm-up (a peak: other processes can
    only slow a run down), repeating no more once they have taken PROBE_MATMUL_SECONDS.

    Without `n`, sizes grow from 64, doubling up to 2048 on CPUs and 8192 elsewhere, while the next size's
    matmul (this one's time x 8) should take at most PROBE_MATMUL_SECONDS and the probe has taken less than
    PROBE_SECONDS; the figure is the one at the largest size measured. So a slow dtype (fp16 or bf16 on a
    CPU without 16-bit units) stops at a small size within a second or two instead of taking minutes."""
    device = torch.device(device)
    largest = n or (2048 if device.type == "cpu" else 8192)
    sizes = [n] if n else [s for s in (64 * 2**i for i in range(8)) if s <= largest]
    # A private generator: measuring must not move the run's random state (exact resume depends on it).
    gen = torch.Generator(device).manual_seed(0)
    started = None  # the probe's clock starts after the first warm-up (which may include a one-time setup)
    for size in sizes:
        seconds, warmed_up = _best_matmul_seconds(device, dtype, size, gen)
        started = warmed_up if started is None else started
        if 8 * seconds > PROBE_MATMUL_SECONDS or time.perf_counter() - started > PROBE_SECONDS:
            break  # twice the size is 8 times the work
    return 2 * size**3 / seconds, size


def _best_matmul_seconds(
    device: torch.device, dtype: torch.dtype, n: int, gen: torch.Generator
) -> tuple[float, float]:
    """(the fastest of the timed (n, n) @ (n, n) matmuls in seconds, when the warm-up ended)."""
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # the warm-up
    _sync(device)
    warm = time.perf_counter()
    times: list[float] = []
    while len(times) < PROBE_REPEATS and sum(times) < PROBE_MATMUL_SECONDS:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return max(min(times), 1e-9), warm


def peak_flops(device: torch.device, precision: str) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from) for training in `precision` (fp32/bf16/fp16) on `device`."""
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        name = torch.cuda.get_device_name(device)
        for key, flops in GPU_PEAKS_16BIT.items():  # the more specific names come first
            if key in name:
                return flops, f"data sheet ({key}, dense {precision})"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    flops, n = matmul_probe(device, dtype)
    return flops, f"measured {dtype} {n}x{n} matmul on {device.type}"


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float:
    """Model FLOPs utilisation: the share of `peak` that `tokens_per_s` tokens of `flops_per_token` use."""
    return tokens_per_s * flops_per_token / peak if peak > 0 else float("nan")


def keep_heap() -> bool:
    """glibc only: serve every allocation from the heap and never give freed memory back to the OS
    (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB). By default each CPU allocation over 32 MB is a fresh
    mmap, so every step page-faults its logits and activations in again, zeroed by the kernel: measured
    −17% step time on the `small` shape (benchmarks/bench_train.py --keep-heap). True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def step_seconds(
    model_cfg,
    train_cfg,
    token_ids,
    seed: int = 0,
    seconds: float = 8.0,
    model: torch.nn.Module | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Median seconds per training step of this model and TrainConfig on `device`, measured for about
    `seconds` on a throwaway copy (so a time budget can become a number of steps, and the cosine schedule
    can be sized to it), in the config's precision. `model`: measure a copy of this one (e.g. with a LoRA
    adapter) instead of a fresh `model_cfg` model."""
    import copy

    from scratchlm.data.shards import WindowSampler
    from scratchlm.model.gpt import GPT
    from scratchlm.train.loop import train
    from scratchlm.train.losses import next_token_loss
    from scratchlm.train.optim import build_optimizer

    device = torch.device(device)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = (copy.deepcopy(model) if model is not None else GPT(model_cfg)).to(device)
    optimizer = build_optimizer(model, train_cfg)
    sampler = WindowSampler([token_ids], model_cfg.context_length, seed)
    probe = dataclasses.replace(train_cfg, max_steps=10**9, warmup_steps=0)
    times: list[float] = []
    start = time.perf_counter()
    train(
        model,
        sampler,
        next_token_loss,
        optimizer,
        probe,
        device=device,
        autocast=autocast(train_cfg.precision, device),
        on_step=lambda s, r: times.append(r.seconds),
        should_stop=lambda: time.perf_counter() - start > seconds and len(times) >= 2,
    )
    torch.random.set_rng_state(state)  # measuring must not change what the real run draws
    return statistics.median(times[3:] or times)
