"""How good are generated responses? Three measures that need no second model:

- response perplexity: exp of the mean negative log-likelihood of the *reference* responses' tokens given
  their prompts (lower is better; it scores the model, not one sampled answer);
- exact match: the response equals the reference after case folding and whitespace normalisation;
- ROUGE-L (Lin 2004): the F-measure of the longest common subsequence of words.

Knows nothing about files, templates or tokenizers: batches and strings in, numbers out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
_WORD = re.compile(r"\w+")
_CLAUSE_END = re.compile(r"[.,;:!?](?=\s|$)|\n")


@torch.no_grad()
def response_nll(
    model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device="cpu"
) -> tuple[float, int]:
    """(mean NLL in nats per target token, number of target tokens) over (inputs, targets) batches whose
    targets are -100 except on the response tokens. Every token counts once, whatever its batch, so the
    mean does not depend on how examples were grouped (the training loss averages per batch)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        logits = model(inputs)
        total += F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
        ).item()
        count += int((targets != IGNORE_INDEX).sum())
    model.train(was_training)
    return (total / count if count else math.nan), count


def perplexity_of(nll: float) -> float:
    """exp(NLL), capped so a hopeless model still gives a finite number in JSON."""
    return math.exp(min(nll, 80.0))


def normalize(text: str) -> str:
    """Case-folded, whitespace runs collapsed to one space, ends stripped.

    >>> normalize("  The  Sun\\nrises. ")
    'the sun rises.'
    """
    return " ".join(text.casefold().split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the texts agree after `normalize`, else 0.0."""
    return float(normalize(prediction) == normalize(reference))


def first_clause(text: str) -> list[str]:
    """The words (as `words` finds them) before the first clause mark: . , ; : ! or ? followed by a space or
    the end, or a line break. A dot inside a name (``json.dumps``) does not end the clause.

    >>> first_clause("Serialize ``obj`` to a JSON formatted ``str``, see json.dumps.")
    ['serialize', 'obj', 'to', 'a', 'json', 'formatted', 'str']
    """
    return words(_CLAUSE_END.split(text.strip(), maxsplit=1)[0])


def first_clause_match(prediction: str, reference: str) -> float:
    """1.0 when both texts have a first clause and its words agree (case-folded, punctuation dropped): the
    answer's gist is right even if what follows differs."""
    clause = first_clause(reference)
    return float(bool(clause) and first_clause(prediction) == clause)


def words(text: str) -> list[str]:
    """ROUGE's tokens: case-folded runs of letters, digits and underscores (punctuation is dropped).

    >>> words("It's 3 o'clock, Dr. Smith!")
    ['it', 's', '3', 'o', 'clock', 'dr', 'smith']
    """
    return _WORD.findall(text.casefold())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over two rows: O(len(a)·len(b)).

    >>> lcs_length("the cat sat on the mat".split(), "the cat lay on a mat".split())
    4
    """
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: with LCS the longest common word subsequence, precision = LCS / prediction words and
    recall = LCS / reference words, F1 = 2PR / (P + R). 0.0 when either side has no words (as Google's
    `rouge_score` package scores an empty text).

    >>> round(rouge_l("the cat sat on the mat", "the cat lay on a mat"), 4)
    0.6667
    """
    p, r = words(prediction), words(reference)
    if not p or not r:
        return 0.0
    common = lcs_length(p, r)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def text_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean exact match, first-clause match and ROUGE-L F1 over pairs."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    n = len(predictions)
    if n == 0:
        return {"exact_match": math.nan, "first_clause_match": math.nan, "rouge_l": math.nan, "n": 0}
    pairs = list(zip(predictions, references))
    return {
        "exact_match": sum(exact_match(p, r) for p, r in pairs) / n,
        "first_clause_match": sum(first_clause_match(p, r) for p, r in pairs) / n,
        "rouge_l": sum(rouge_l(p, r) for p, r in pairs) / n,
        "n": n,
    }
