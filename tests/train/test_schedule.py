"""Learning-rate schedule values."""

from __future__ import annotations

import doctest
from itertools import pairwise

import pytest

from scratchlm.config import TrainConfig
from scratchlm.train import schedule
from scratchlm.train.schedule import lr_at


def test_doctests():
    assert doctest.testmod(schedule).failed == 0


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_warmup_then_monotone_decay_to_the_floor(decay):
    cfg = TrainConfig(lr=3e-4, min_lr=3e-5, warmup_steps=20, max_steps=200, decay=decay)
    lrs = [lr_at(s, cfg) for s in range(250)]
    assert lrs[19] == pytest.approx(3e-4)
    assert all(a < b for a, b in pairwise(lrs[:20]))
    assert all(a >= b for a, b in pairwise(lrs[20:201]))
    assert lrs[200] == lrs[249] == pytest.approx(3e-5)
    mid = lr_at(110, cfg)
    assert mid == pytest.approx(3e-5 + 0.5 * (3e-4 - 3e-5))


def test_constant_and_no_warmup():
    assert lr_at(0, TrainConfig(lr=1e-3, warmup_steps=0, decay="constant")) == 1e-3
    assert lr_at(999, TrainConfig(lr=1e-3, warmup_steps=0, decay="constant", max_steps=10)) == 1e-3
