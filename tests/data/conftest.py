"""Shared fixtures of the shard tests (prepare writes them, shards reads them): a small corpus of real text
and one shard directory prepared from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchlm.data.prepare import prepare_shards


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, stdlib_text) -> Path:
    """Nine documents of 2-25 KB of real text, one empty file, in two directories."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "sub").mkdir()
    start = 0
    for i in range(9):
        size = 2_000 + 3_000 * i
        (d / ("sub" if i % 3 == 0 else ".") / f"doc{i}.txt").write_text(
            stdlib_text[start : start + size], encoding="utf-8"
        )
        start += size
    (d / "empty.txt").write_text("")
    return d


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, corpus, trained) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards") / "out"
    meta = prepare_shards(
        [corpus], trained, out, val_fraction=0.25, shard_tokens=4_000, block_bytes=4_096, seed=3
    )
    return out, meta
