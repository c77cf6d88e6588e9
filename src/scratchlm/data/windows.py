"""Sliding windows over token ids: the (input, target) pairs of next-token prediction.

Pure, and exactly the book's `GPTDatasetV1` loop: windows start at `range(0, len(ids) - context_length,
stride)`, inputs are `ids[i : i + context_length]` and targets the same span shifted by one token.
Knows nothing about text, files or batching.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from scratchlm.errors import ScratchLMError

TokenIds = Sequence[int] | np.ndarray | torch.Tensor


def window_starts(n_tokens: int, context_length: int, stride: int) -> range:
    """Start offsets of the windows over `n_tokens` ids; a clear error when there is not one window.

    Each window needs `context_length` inputs plus one more token for the last target.

    >>> window_starts(10, 4, 4)
    range(0, 6, 4)
    >>> list(window_starts(10, 4, 2))
    [0, 2, 4]
    """
    if context_length < 1:
        raise ScratchLMError(f"context_length must be at least 1, got {context_length}")
    if stride < 1:
        raise ScratchLMError(
            f"stride must be at least 1, got {stride} (stride = context_length gives windows that "
            "neither overlap nor skip tokens)"
        )
    if n_tokens < context_length + 1:
        raise ScratchLMError(
            f"the text is too short for one window: context_length {context_length} needs at least "
            f"{context_length + 1} tokens (inputs plus the next-token target), got {n_tokens}; "
            "use more text or a smaller context_length"
        )
    return range(0, n_tokens - context_length, stride)


def as_token_tensor(token_ids: TokenIds) -> torch.Tensor:
    """A 1-D int64 tensor of the ids (no copy when `token_ids` already is one)."""
    if isinstance(token_ids, np.ndarray):
        token_ids = torch.from_numpy(token_ids.astype(np.int64, copy=False))
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ScratchLMError(f"token ids must be one sequence (1-D), got shape {tuple(ids.shape)}")
    return ids


def make_windows(token_ids: TokenIds, context_length: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows at once as new (N, context_length) int64 tensors `(inputs, targets)`.

    >>> inputs, targets = make_windows([10, 11, 12, 13, 14, 15], context_length=2, stride=2)
    >>> inputs.tolist(), targets.tolist()
    ([[10, 11], [12, 13]], [[11, 12], [13, 14]])
    """
    ids = as_token_tensor(token_ids)
    window_starts(len(ids), context_length, stride)  # the errors for impossible settings
    # unfold over ids[:-1] yields exactly the starts 0, stride, ... < n - context_length; its windows
    # overlap in memory when stride < context_length, so copy them into tensors of their own.
    inputs = ids[:-1].unfold(0, context_length, stride)
    targets = ids[1:].unfold(0, context_length, stride)
    return inputs.clone(), targets.clone()


class WindowDataset(Dataset):
    """The windows of one id sequence as a map-style dataset; item i is `(inputs, targets)`, each of
    shape (context_length,), sliced on access (views of the ids, no N × context_length copy)."""

    def __init__(self, token_ids: TokenIds, context_length: int, stride: int) -> None:
        self.token_ids = as_token_tensor(token_ids)
        self.context_length = context_length
        self.stride = stride
        self.starts = window_starts(len(self.token_ids), context_length, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.starts[index]  # IndexError past the end, as a Sequence should
        end = start + self.context_length
        return self.token_ids[start:end], self.token_ids[start + 1 : end + 1]
