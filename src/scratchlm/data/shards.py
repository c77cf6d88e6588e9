"""The token shard format and its reading side: raw little-endian id files (`train_00000.bin`, …), a meta.json
and the tokenizer; `read_meta`, `check_shards` and `ShardDataset`, a memmap window sampler.
Does not know how shards are written: `data.prepare` does that."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, sha256_file

if TYPE_CHECKING:
    import torch

FORMAT = "scratchlm-shards"
FORMAT_VERSION = 1
META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"
DTYPES = {"uint16": 1 << 16, "uint32": 1 << 32}  # dtype name -> ids it can hold


def shard_dtype(vocab_size: int) -> str:
    """The smallest little-endian dtype that holds every id: uint16 up to 65,536 tokens, else uint32."""
    return "uint16" if vocab_size <= DTYPES["uint16"] else "uint32"


def read_meta(directory: str | os.PathLike) -> dict:
    """Read and check a shard directory's meta.json: format, version, dtype against the vocabulary."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ScratchLMError(
            f"{directory}: no {META_FILE}; not a shard directory written by `scratchlm data prepare` "
            "(or that run did not finish)"
        )
    meta = read_json(path)
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ScratchLMError(
            f"{path}: format {meta.get('format')!r} version {meta.get('version')!r} is not "
            f"{FORMAT!r} version {FORMAT_VERSION}; prepare the shards again with this scratchlm"
        )
    dtype, vocab_size = meta.get("dtype"), meta.get("vocab_size")
    if dtype not in DTYPES:
        raise ScratchLMError(f"{path}: unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    if not isinstance(vocab_size, int) or vocab_size > DTYPES[dtype]:
        raise ScratchLMError(
            f"{path}: dtype {dtype} cannot hold the ids of a vocabulary of {vocab_size:,} tokens "
            f"(at most {DTYPES[dtype]:,}); the shards are corrupt: prepare them again"
        )
    return meta


def check_shards(
    directory: str | os.PathLike, meta: dict, splits: Iterable[str] | None = None, verify: bool = False
) -> None:
    """Every shard of `splits` (default all) exists with the size meta.json gives; with `verify`, also
    its SHA-256."""
    itemsize = np.dtype(meta["dtype"]).itemsize
    for split in meta["shards"] if splits is None else splits:
        for shard in meta["shards"][split]:
            path = Path(directory) / shard["file"]
            if not path.is_file():
                raise ScratchLMError(f"{path}: {split} shard listed in {META_FILE} is missing")
            size = path.stat().st_size
            if size != shard["tokens"] * itemsize:
                raise ScratchLMError(
                    f"{path}: {size:,} bytes, but {META_FILE} says {shard['tokens']:,} tokens × {itemsize} "
                    "bytes; the shard is truncated or from another run: prepare again"
                )
            if verify and sha256_file(path) != shard["sha256"]:
                raise ScratchLMError(
                    f"{path}: checksum mismatch: its SHA-256 differs from {META_FILE}, the file changed"
                )


class WindowSampler:
    """Random and sequential `(x, y)` windows over token arrays (in memory or memory-mapped), with a
    seeded generator whose state can be saved and restored (exact resume)."""

    def __init__(self, tokens: list[np.ndarray], context_length: int, seed: int = 0) -> None:
        if context_length < 1:
            raise ScratchLMError(f"context_length must be at least 1, got {context_length}")
        usable = [t for t in tokens if len(t) > context_length]
        if not usable:
            longest = max((len(t) for t in tokens), default=0)
            raise ScratchLMError(
                f"no text holds one window: context_length {context_length} needs {context_length + 1} "
                f"tokens, the longest has {longest:,}; use a smaller context_length or more text"
            )
        self.context_length = context_length
        self.tokens = usable
        # Window starts of array k are the positions offsets[k] .. offsets[k+1]-1 of one flat range.
        self.offsets = np.cumsum([0] + [len(t) - context_length for t in self.tokens])
        self.rng = np.random.default_rng(seed)
        # Data parallelism: every process draws the same global batch and keeps its own slice, so N
        # processes see exactly the windows one process would see with an N times larger batch.
        self.rank, self.world_size = 0, 1

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    def get_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch `(x, y)` of int64 tensors, each (B, T): `x[b] = tokens[i : i + T]` and
        `y[b] = tokens[i + 1 : i + T + 1]` for a random array and start `i`."""
        _check_batch_size(batch_size)
        flat = self.rng.integers(0, self.offsets[-1], size=batch_size * self.world_size)
        flat = flat[self.rank * batch_size : (self.rank + 1) * batch_size]
        shard = np.searchsorted(self.offsets, flat, side="right") - 1
        return self._gather(shard, flat - self.offsets[shard])

    def iter_batches(
        self, batch_size: int, num_batches: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`get_batch` again and again: forever, or `num_batches` times."""
        n = 0
        while num_batches is None or n < num_batches:
            yield self.get_batch(batch_size)
            n += 1

    def iter_sequential(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every window at stride `context_length`, array by array in order, in batches of `batch_size`
        (the last may be smaller); the windows of one array start at the book's `range(0, n - T, T)`."""
        _check_batch_size(batch_size)
        T = self.context_length
        starts = ((k, i) for k, t in enumerate(self.tokens) for i in range(0, len(t) - T, T))
        while batch := list(itertools.islice(starts, batch_size)):
            shard, start = zip(*batch)
            yield self._gather(np.array(shard), np.array(start))

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def _gather(self, shard: np.ndarray, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # here, so that preparing shards (and its worker processes) never loads torch

        T = self.context_length
        rows = np.stack([self.tokens[k][i : i + T + 1] for k, i in zip(shard.tolist(), starts.tolist())])
        rows = rows.astype(np.int64)
        return torch.from_numpy(np.ascontiguousarray(rows[:, :-1])), torch.from_numpy(rows[:, 1:].copy())


class ShardDataset(WindowSampler):
    """Windows of one split of a shard directory, read through `np.memmap` (the files are never loaded).

    `get_batch` draws nanoGPT-style random windows: a start uniform over every position of every shard
    that leaves room for `context_length` inputs and one more target (so a shard is chosen in proportion
    to its usable length, and windows never cross shards). `iter_sequential` walks the split in order
    with stride `context_length`, the same windows every time (for validation loss). Randomness comes
    from `seed`; `state_dict` / `load_state_dict` carry it across a resumed run.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        split: str = "train",
        *,
        context_length: int,
        seed: int = 0,
        verify: bool = False,
    ) -> None:
        if context_length < 1:
            raise ScratchLMError(f"context_length must be at least 1, got {context_length}")
        self.directory, self.split, self.context_length = Path(directory), split, context_length
        self.meta = read_meta(directory)
        if split not in self.meta["shards"]:
            raise ScratchLMError(
                f"unknown split {split!r}: {self.directory} has {', '.join(self.meta['shards'])}"
            )
        check_shards(directory, self.meta, [split], verify)
        listed = self.meta["shards"][split]
        if not listed:
            raise ScratchLMError(
                f"{self.directory}: the {split} split is empty (prepared with val_fraction "
                f"{self.meta['val_fraction']}); prepare again with a val fraction above 0"
            )
        usable = [s for s in listed if s["tokens"] > context_length]
        if not usable:
            longest = max((s["tokens"] for s in listed), default=0)
            raise ScratchLMError(
                f"{self.directory}: no {split} shard holds one window: context_length {context_length} needs "
                f"{context_length + 1} tokens, the longest {split} shard has {longest:,}; use a smaller "
                "context_length, or more text (or a larger --val-fraction for val)"
            )
        self.skipped = len(listed) - len(usable)
        self.files = [self.directory / s["file"] for s in usable]
        dtype = np.dtype(self.meta["dtype"]).newbyteorder("<")
        super().__init__([np.memmap(f, dtype=dtype, mode="r") for f in self.files], context_length, seed)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ScratchLMError(f"batch_size must be at least 1, got {batch_size}")
