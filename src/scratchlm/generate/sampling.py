"""Logits to the next token. Pure functions over tensors, applied in HF's order: repetition penalty,
temperature, top-k, top-p, then greedy argmax or a draw from the softmax."""

from __future__ import annotations

import torch


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019), as HF applies it: for every token already in `seen`, divide a
    positive logit by `penalty`, multiply a negative one. logits (B, V); seen (B, S) ids.

    >>> apply_repetition_penalty(torch.tensor([[2.0, -2.0, 1.0]]), torch.tensor([[0, 1]]), 2.0)
    tensor([[ 1., -4.,  1.]])
    """
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    picked = logits.gather(1, seen)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(1, seen, picked)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (ties at the k-th value are kept), set the rest to -inf.

    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0]]), 2)
    tensor([[-inf, 3., 2.]])
    """
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -torch.inf)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    probabilities sum to at least p; always keep the most likely one.

    >>> top_p_filter(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), 0.7)
    tensor([[-0.6931, -1.2040,    -inf]])
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, stable=True, dim=-1)  # ties: lower id first
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass strictly before each token
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, -torch.inf)


MIN_TEMPERATURE = 1e-4


def sample_next(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, V) -> next token ids (B,). temperature 0 is greedy and ignores the filters; so is a
    temperature under 1e-4, its limit (dividing by it would overflow float32 into inf - inf = NaN)."""
    if temperature < MIN_TEMPERATURE:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits.float(), dim=-1)
    broken = ~torch.isfinite(probs).all(dim=-1)
    if bool(broken.any()):  # inf logits (e.g. a tiny repetition penalty): the limit is the argmax
        top = torch.nan_to_num(logits, nan=-torch.inf).argmax(dim=-1)
        probs[broken] = torch.nn.functional.one_hot(top[broken], probs.shape[-1]).to(probs.dtype)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
