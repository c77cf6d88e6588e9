"""Peak FLOP/s, MFU and the CPU allocator setting."""

from __future__ import annotations

import platform

import pytest
import torch

from scratchlm.train import perf


def test_matmul_peak_is_a_plausible_measurement():
    flops = perf.matmul_peak_flops("cpu", torch.float32, n=256)
    assert 1e8 < flops < 1e15


def test_cpu_peak_is_measured_in_the_runs_precision():
    flops, source = perf.peak_flops(torch.device("cpu"), "fp32")
    assert flops > 0 and "measured" in source and "float32" in source


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
    perf.matmul_peak_flops("cpu", torch.float32, n=64)
    assert torch.equal(torch.rand(3), expected)
