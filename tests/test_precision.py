"""`train.precision`: what "auto" and "fastest" resolve to, and that the CPU probe is quick and choosy."""

from __future__ import annotations

import time

import pytest
import torch

from scratchlm import precision


@pytest.fixture(autouse=True)
def fresh_probe():
    precision.fastest_cpu_precision.cache_clear()
    yield
    precision.fastest_cpu_precision.cache_clear()


def _fake_passes(monkeypatch, seconds: dict[str, list[float]]) -> list[str]:
    """_linear_pass returns these times in turn, per precision; the passes made are recorded."""
    made: list[str] = []

    def fake(x, w, precision):
        made.append(precision)
        return seconds[precision][min(len([m for m in made if m == precision]), len(seconds[precision])) - 1]

    monkeypatch.setattr(precision, "_linear_pass", fake)
    return made


@pytest.mark.parametrize(("fp32_s", "bf16_s", "chosen"), [(1.0, 0.5, "bf16"), (1.0, 0.9, "fp32")])
def test_fastest_takes_bf16_on_a_cpu_only_when_it_is_clearly_faster(monkeypatch, fp32_s, bf16_s, chosen):
    made = _fake_passes(monkeypatch, {"fp32": [fp32_s], "bf16": [bf16_s]})
    assert precision.resolve_precision("fastest", torch.device("cpu")) == chosen
    assert made == ["fp32", "bf16"] * (2 + precision.PROBE_PASSES)


def test_a_cpu_without_bf16_units_is_told_by_the_warm_up(monkeypatch):
    made = _fake_passes(monkeypatch, {"fp32": [0.01], "bf16": [0.7]})
    assert precision.fastest_cpu_precision() == "fp32"
    assert made == ["fp32", "bf16", "fp32", "bf16"]


def test_the_warm_up_does_not_count(monkeypatch):
    # bf16's first pass pays a one-time setup; the timed passes show it is twice as fast
    _fake_passes(monkeypatch, {"fp32": [0.01, 0.01, 0.01], "bf16": [0.2, 0.005, 0.005]})
    assert precision.fastest_cpu_precision() == "bf16"


def test_fastest_measures_once_per_process(monkeypatch):
    made = _fake_passes(monkeypatch, {"fp32": [1.0], "bf16": [0.5]})
    for _ in range(3):
        precision.resolve_precision("fastest", torch.device("cpu"))
    assert len(made) == 2 * (2 + precision.PROBE_PASSES)


def test_the_real_probe_is_quick_and_picks_a_cpu_precision():
    t0 = time.perf_counter()
    assert precision.fastest_cpu_precision() in ("fp32", "bf16")
    assert time.perf_counter() - t0 < 5


def test_other_precisions_resolve_without_measuring(monkeypatch):
    monkeypatch.setattr(precision, "_linear_pass", lambda *a: pytest.fail("measured"))
    assert precision.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert precision.resolve_precision("fastest", torch.device("meta")) == "fp32"  # not a CPU: as auto
    assert precision.resolve_precision("bf16", torch.device("cpu")) == "bf16"
