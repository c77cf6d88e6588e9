"""Reading token shards: meta.json and shard checks, and the memmap sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scratchlm.data.prepare import prepare_shards
from scratchlm.data.shards import ShardDataset, check_shards, read_meta, shard_dtype
from scratchlm.errors import ScratchLMError


def test_dtype_choice():
    assert shard_dtype(50_257) == shard_dtype(65_536) == "uint16"
    assert shard_dtype(65_537) == shard_dtype(100_277) == "uint32"


# ---- the sampler ------------------------------------------------------------------------------------------
def test_random_windows_are_real_slices_of_a_shard(prepared):
    out, meta = prepared
    ds = ShardDataset(out, "train", context_length=32, seed=0)
    x, y = ds.get_batch(16)
    assert x.shape == y.shape == (16, 32) and x.dtype == y.dtype == torch.int64
    shards_ = [np.fromfile(out / s["file"], dtype="<u2").astype(np.int64) for s in meta["shards"]["train"]]
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        found = [
            (k, i)
            for k, t in enumerate(shards_)
            for i in np.flatnonzero(
                (np.lib.stride_tricks.sliding_window_view(t, 33) == np.r_[row_x, row_y[-1]]).all(1)
            )
        ]
        assert found  # x = shard[i:i+T] and y = shard[i+1:i+T+1] within one shard


def test_sampling_is_reproducible_with_a_seed_and_resumable(prepared):
    out, _ = prepared
    a = ShardDataset(out, "train", context_length=8, seed=7)
    b = ShardDataset(out, "train", context_length=8, seed=7)
    c = ShardDataset(out, "train", context_length=8, seed=8)
    first = [x for x, _ in a.iter_batches(4, num_batches=3)]
    assert all(torch.equal(p, q) for p, q in zip(first, [x for x, _ in b.iter_batches(4, 3)]))
    assert not torch.equal(first[0], c.get_batch(4)[0])
    state = a.state_dict()
    next_batch = a.get_batch(4)[0]
    c.load_state_dict(json.loads(json.dumps(state)))  # the state is JSON: it can go into a checkpoint
    assert torch.equal(c.get_batch(4)[0], next_batch)


def test_shards_are_chosen_in_proportion_to_their_usable_length(prepared):
    out, meta = prepared
    ds = ShardDataset(out, "train", context_length=8, seed=0)
    flat = ds.rng.integers(0, ds.offsets[-1], size=1)  # the draw get_batch makes
    assert ds.offsets[-1] == sum(s["tokens"] - 8 for s in meta["shards"]["train"])
    assert 0 <= flat[0] < ds.offsets[-1]


def test_sequential_pass_covers_the_split_in_order(prepared):
    out, meta = prepared
    ds = ShardDataset(out, "val", context_length=50)
    batches = list(ds.iter_sequential(batch_size=7))
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    expected_x, expected_y = [], []
    for s in meta["shards"]["val"]:
        t = np.fromfile(out / s["file"], dtype="<u2").tolist()
        for i in range(0, len(t) - 50, 50):
            expected_x.append(t[i : i + 50])
            expected_y.append(t[i + 1 : i + 51])
    assert x.tolist() == expected_x and y.tolist() == expected_y
    assert all(len(b[0]) == 7 for b in batches[:-1])
    assert [b[0].tolist() for b in ds.iter_sequential(7)] == [b[0].tolist() for b in batches]


def test_a_shard_shorter_than_a_window_is_skipped(prepared):
    out, meta = prepared
    last = meta["shards"]["train"][-1]["tokens"]
    ds = ShardDataset(out, "train", context_length=last)  # the short last shard holds no window
    assert ds.skipped == 1 and len(ds.tokens) == len(meta["shards"]["train"]) - 1


# ---- errors ----------------------------------------------------------------------------------------------
@pytest.fixture
def copy_of(prepared, tmp_path) -> Path:
    out, _ = prepared
    d = tmp_path / "copy"
    d.mkdir()
    for p in out.iterdir():
        if p.is_file():
            (d / p.name).write_bytes(p.read_bytes())
    return d


def test_batch_size_must_be_positive(prepared):
    with pytest.raises(ScratchLMError, match="batch_size must be at least 1"):
        ShardDataset(prepared[0], context_length=4).get_batch(0)


def test_missing_meta_is_a_clear_error(tmp_path):
    with pytest.raises(ScratchLMError, match=r"no meta\.json"):
        ShardDataset(tmp_path, context_length=4)


def test_every_shard_too_short_is_an_error(prepared):
    out, _ = prepared
    with pytest.raises(
        ScratchLMError, match="no train shard holds one window: context_length 4000 needs 4001"
    ):
        ShardDataset(out, "train", context_length=4_000)


def test_a_dtype_that_cannot_hold_the_vocabulary_is_an_error(copy_of):
    meta = json.loads((copy_of / "meta.json").read_text())
    meta["vocab_size"] = 100_277
    (copy_of / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ScratchLMError, match="dtype uint16 cannot hold the ids of a vocabulary of 100,277"):
        read_meta(copy_of)


def test_a_checksum_mismatch_names_the_file(copy_of):
    path = copy_of / "train_00001.bin"
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    ShardDataset(copy_of, context_length=4)  # sizes agree: only verify reads the bytes
    with pytest.raises(ScratchLMError, match=r"train_00001\.bin: checksum mismatch"):
        ShardDataset(copy_of, context_length=4, verify=True)


def test_a_truncated_shard_is_an_error(copy_of):
    path = copy_of / "val_00000.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ScratchLMError, match=r"val_00000\.bin: .* truncated"):
        check_shards(copy_of, read_meta(copy_of))


def test_an_empty_val_split_is_an_error(tmp_path, trained):
    (tmp_path / "a.txt").write_text("hello world, " * 20)
    prepare_shards([tmp_path / "a.txt"], trained, tmp_path / "o", val_fraction=0)
    with pytest.raises(ScratchLMError, match="the val split is empty"):
        ShardDataset(tmp_path / "o", "val", context_length=4)
