"""Samplers over fixed logits."""

from __future__ import annotations

import doctest

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.generate import sampling
from scratchlm.generate.sampling import sample_next, top_k_filter, top_p_filter


def test_doctests():
    assert doctest.testmod(sampling).failed == 0


def test_greedy_ignores_filters_and_seed():
    logits = torch.tensor([[0.1, 2.0, 1.0], [3.0, 0.0, -1.0]])
    assert sample_next(logits).tolist() == [1, 0]


def test_seeded_sampling_is_reproducible_and_respects_top_k():
    logits = torch.randn(4, 50)
    draws = [sample_next(logits, 1.0, top_k=3, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])
    top3 = torch.topk(logits, 3).indices
    for _ in range(20):
        token = sample_next(logits, 1.5, top_k=3)
        assert all(token[i] in top3[i] for i in range(4))


logit_rows = st.lists(st.floats(-20, 20), min_size=2, max_size=30).map(lambda xs: torch.tensor([xs]))


@settings(max_examples=200, deadline=None)
@given(logit_rows, st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_sufficient_set(logits, p):
    kept = torch.isfinite(top_p_filter(logits, p))
    probs = torch.softmax(logits, dim=-1)
    assert kept[0, logits.argmax()]  # the most likely token always survives
    assert probs[kept].sum() >= p - 1e-5 or kept.all()
    # Every kept token is at least as likely as every dropped one.
    if (~kept).any():
        assert probs[kept].min() >= probs[~kept].max() - 1e-7


@given(logit_rows, st.integers(1, 40))
def test_top_k_keeps_k(logits, k):
    kept = torch.isfinite(top_k_filter(logits, k))
    assert kept.sum() >= min(k, logits.shape[-1])


def test_a_vanishing_temperature_is_greedy_not_nan():
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    for t in (1e-300, 1e-30, 1e-5):
        assert sample_next(logits, temperature=t).tolist() == [1, 2]


def test_infinite_logits_never_break_sampling():
    logits = torch.tensor([[1.0, torch.inf, 2.0], [0.5, 0.1, 0.2]])
    for _ in range(5):
        assert sample_next(logits, temperature=1.0).tolist()[0] == 1
    penalized = sampling.apply_repetition_penalty(torch.tensor([[1.0, 2.0]]), torch.tensor([[1]]), 1e-320)
    assert sample_next(penalized, temperature=1.0, top_p=0.5).tolist() == [1]
