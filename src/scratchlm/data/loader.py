"""Batches of windows for text that fits in memory: the book's `create_dataloader_v1`, seeded.

Text is encoded once, cut into windows (`data.windows`) and served by a torch `DataLoader` whose shuffle
order comes from a seed. Corpora bigger than memory go through `data.shards` instead.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from scratchlm.data.windows import TokenIds, WindowDataset
from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer.tokenizer import EOT


class TextEncoder(Protocol):
    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


def encode_text(text: str, tokenizer: TextEncoder) -> list[int]:
    """Encode a training text as the book does: `<|endoftext|>` in the text is the separator token.

    Works with our `Tokenizer`, a `tiktoken.Encoding` and the `WordTokenizer` (whose vocabulary holds
    `<|endoftext|>` as a word)."""
    specials = getattr(tokenizer, "special_tokens", None) or getattr(tokenizer, "special_tokens_set", None)
    if specials is None:
        return tokenizer.encode(text)
    return tokenizer.encode(text, allowed_special={EOT} & set(specials))


def create_dataloader(
    text_or_ids: str | TokenIds,
    tokenizer: TextEncoder | None = None,
    *,
    context_length: int,
    stride: int,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader of `(inputs, targets)` batches, each of shape (batch_size, context_length).

    `text_or_ids` is a text (encoded with `tokenizer`) or token ids. With `shuffle`, the order of windows
    comes from `seed`: two loaders built alike yield the same batches, and each new pass over one loader
    (an epoch) draws a new order. `drop_last` drops a final short batch, as the book does for training.
    """
    if isinstance(text_or_ids, str):
        if tokenizer is None:
            raise ScratchLMError("a text needs a tokenizer to become ids: pass tokenizer=...")
        token_ids = encode_text(text_or_ids, tokenizer)
    else:
        token_ids = text_or_ids
    if batch_size < 1:
        raise ScratchLMError(f"batch_size must be at least 1, got {batch_size}")
    dataset = WindowDataset(token_ids, context_length, stride)
    if drop_last and len(dataset) < batch_size:
        raise ScratchLMError(
            f"{len(dataset)} window(s) of {context_length} tokens (stride {stride}) do not fill one batch "
            f"of {batch_size}, and drop_last would drop it: use more text, a smaller batch_size, "
            "context_length or stride, or drop_last=False"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def split_text(text: str, train_ratio: float = 0.9) -> tuple[str, str]:
    """Split a text by characters into (train, validation), the first `train_ratio` for training.

    >>> split_text("abcdefghij", 0.8)
    ('abcdefgh', 'ij')
    """
    if not 0 < train_ratio < 1:
        raise ScratchLMError(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}")
    cut = int(train_ratio * len(text))
    return text[:cut], text[cut:]
