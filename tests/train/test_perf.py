"""Peak FLOP/s, MFU and the CPU allocator setting."""

from __future__ import annotations

import math
import platform
import time

import pytest
import torch

from scratchlm.train import perf


def test_matmul_peak_is_a_plausible_measurement():
    flops = perf.matmul_peak_flops("cpu", torch.float32, n=256)
    assert 1e8 < flops < 1e15


def test_cpu_peak_is_measured_in_the_runs_precision():
    flops, source = perf.peak_flops(torch.device("cpu"), "fp32")
    assert flops > 0 and "measured" in source and "float32" in source
    n = int(source.split()[2].split("x")[0])  # "measured torch.float32 NxN matmul on cpu": the size it used
    assert 64 <= n <= 2048 and source.split()[2] == f"{n}x{n}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA A10G", 70e12),
        ("NVIDIA L40S", 362e12),
        ("NVIDIA L4", 121e12),
    ],
)
def test_gpu_peaks_come_from_the_data_sheet(monkeypatch, name, expected):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    flops, source = perf.peak_flops(torch.device("cuda"), "bf16")
    assert flops == expected and "data sheet" in source


def test_mfu():
    assert perf.mfu(1000.0, 6e6, 12e9) == pytest.approx(0.5)
    assert perf.mfu(1000.0, 6e6, 0.0) != perf.mfu(1000.0, 6e6, 0.0)  # nan: no peak known


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_keep_heap_applies_on_glibc():
    assert perf.keep_heap() is True
    x = torch.empty(64 * 2**20, dtype=torch.uint8)  # a 64 MB allocation still works
    assert x.numel() == 64 * 2**20


def test_measuring_the_peak_leaves_the_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    perf.matmul_peak_flops("cpu", torch.float32, n=64)
    perf.matmul_peak_flops("cpu", torch.bfloat16)  # the growing probe too
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(torch.rand(3), expected)


def slow_matmul(monkeypatch, seconds):
    """Make perf's torch.mm sleep seconds(n) for an (n, n) matmul; return the sizes it was called with."""
    sizes: list[int] = []
    mm = torch.mm

    def slow(a, b, *, out=None):
        sizes.append(a.shape[0])
        time.sleep(seconds(a.shape[0]))
        return mm(a, b, out=out)

    monkeypatch.setattr(perf.torch, "mm", slow)
    return sizes


def test_the_probe_stops_growing_in_a_slow_dtype(monkeypatch):
    # 3 GFLOP/s, as fp16 on a CPU without fp16 units: one 2048^2 matmul would take 5.7 s, the old probe 34 s
    sizes = slow_matmul(monkeypatch, lambda n: 2 * n**3 / 3e9)
    start = time.perf_counter()
    flops = perf.matmul_peak_flops("cpu", torch.float16)
    assert time.perf_counter() - start < 2.0
    assert sizes[0] == 64 and max(sizes) < 2048 and sizes == sorted(sizes)
    # the figure is the one at the largest size measured (the sleep alone caps it at 3 GFLOP/s)
    assert 1e8 < flops <= 3e9
    # a size grows only while 8 times its matmul fits in PROBE_MATMUL_SECONDS
    assert 8 * 2 * (max(sizes) // 2) ** 3 / 3e9 <= perf.PROBE_MATMUL_SECONDS


def test_the_probe_stops_growing_once_it_has_taken_its_time(monkeypatch):
    monkeypatch.setattr(perf, "PROBE_SECONDS", 0.2)
    sizes = slow_matmul(monkeypatch, lambda n: 0.02)  # 8 x 0.02 s fits in 0.3 s: only the total stops it
    start = time.perf_counter()
    perf.matmul_peak_flops("cpu", torch.float32)
    assert time.perf_counter() - start < 1.0 and max(sizes) <= 256  # 0.1 s a size after 64's warm-up


def test_an_explicit_size_is_that_size_and_stops_repeating_too(monkeypatch):
    sizes = slow_matmul(monkeypatch, lambda n: 0.0)
    perf.matmul_peak_flops("cpu", torch.float32, n=96)
    assert sizes == [96] * (1 + perf.PROBE_REPEATS)  # a warm-up and the timed repeats
    sizes = slow_matmul(monkeypatch, lambda n: 0.4)
    start = time.perf_counter()
    flops = perf.matmul_peak_flops("cpu", torch.float16, n=512)
    assert sizes == [512, 512]  # the warm-up and one timed matmul, which took over PROBE_MATMUL_SECONDS
    assert time.perf_counter() - start < 1.5 and flops <= 2 * 512**3 / 0.4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_probe_measures_every_precision(dtype):
    # No time bound here: the bound is proven above with a deliberately slow matmul, not by this CPU's speed.
    flops, n = perf.matmul_probe("cpu", dtype)
    assert math.isfinite(flops) and flops > 0 and n in (64, 128, 256, 512, 1024, 2048)
