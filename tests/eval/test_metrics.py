"""Metrics: ROUGE-L and exact match on hand-worked examples; response NLL equals a direct computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scratchlm.config import tiny
from scratchlm.data.instructions import Encoded, collate
from scratchlm.eval.metrics import (
    exact_match,
    first_clause,
    first_clause_match,
    lcs_length,
    perplexity_of,
    response_nll,
    rouge_l,
    text_scores,
    words,
)
from scratchlm.model import GPT


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a b c d", "a b c d", 4),
        ("a b c d", "d c b a", 1),
        ("a x b y c", "a b c", 3),
        ("", "a b", 0),
        ("police killed the gunman", "the gunman police killed", 2),  # Lin (2004), section 3.1
    ],
)
def test_lcs_length(a, b, expected):
    assert lcs_length(a.split(), b.split()) == expected
    assert lcs_length(b.split(), a.split()) == expected


def test_rouge_l_hand_examples():
    # LCS("police killed the gunman", "police kill the gunman") = police, the, gunman: P = R = 3/4
    assert rouge_l("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    # Lin's S3 example: "the gunman kill police" shares only "the gunman" (LCS 2): P = R = 2/4
    assert rouge_l("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)
    # P = 3/3, R = 3/6 -> F = 2 * 1 * 0.5 / 1.5
    assert rouge_l("The car is", "the car is very fast indeed") == pytest.approx(2 / 3)
    assert rouge_l("Fast, FAST car!", "fast fast car") == 1.0  # case-folded, punctuation dropped
    assert rouge_l("", "anything") == 0.0 and rouge_l("", "") == 0.0
    assert rouge_l("completely different", "no overlap here") == 0.0


def test_words_and_exact_match():
    assert words("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]
    assert exact_match("  The Sun\n rises. ", "the sun rises.") == 1.0
    assert exact_match("the sun rises", "the sun rises.") == 0.0
    scores = text_scores(["a b", "x"], ["a b", "y"])
    assert scores == {"exact_match": 0.5, "first_clause_match": 0.5, "rouge_l": 0.5, "n": 2}
    assert math.isnan(text_scores([], [])["rouge_l"])


def test_first_clause():
    assert first_clause("Return the sum; raise ValueError if empty.") == ["return", "the", "sum"]
    assert first_clause("Call os.path.join first") == ["call", "os", "path", "join", "first"]  # dots in names
    assert first_clause("Wait!\nthen go") == ["wait"] and first_clause("a\nb") == ["a"]
    assert first_clause("  ") == [] and first_clause(". x") == []
    reference = "Serialize ``obj`` to a JSON formatted ``str``."
    assert first_clause_match("serialize obj to a json formatted str, quickly", reference) == 1.0
    assert first_clause_match("Serialize obj to a JSON string.", reference) == 0.0
    assert first_clause_match("", "") == 0.0  # no clause to match: never a free point


def test_response_nll_counts_every_response_token_once():
    torch.manual_seed(0)
    model = GPT(tiny(vocab_size=40, context_length=16, n_layers=1, emb_dim=16, n_heads=2))
    examples = [
        Encoded((1, 2, 3, 4, 39), (False, False, True, True, True)),
        Encoded((5, 6, 39), (False, True, True)),
        Encoded((7, 8, 9, 10, 11, 39), (False, False, False, False, True, True)),
    ]
    one_batch = [collate(examples, 39, mask_prompt=True)]
    two_batches = [collate(examples[:1], 39, mask_prompt=True), collate(examples[1:], 39, mask_prompt=True)]
    nll, tokens = response_nll(model, one_batch)
    assert tokens == 3 + 2 + 2
    assert response_nll(model, two_batches)[0] == pytest.approx(nll, rel=1e-5)
    inputs, targets = one_batch[0]
    with torch.no_grad():
        logits = model(inputs)
    manual = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    assert nll == pytest.approx(manual.item(), rel=1e-5)
    assert perplexity_of(nll) == pytest.approx(math.exp(nll))
    assert math.isnan(response_nll(model, [])[0])
