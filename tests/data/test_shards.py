"""Token shards: prepare (documents, split, streaming writes, meta) and the memmap sampler."""

from __future__ import annotations

import doctest
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import regex
import torch

from scratchlm.data import shards
from scratchlm.data.shards import (
    ShardDataset,
    check_shards,
    find_documents,
    prepare_shards,
    read_meta,
    shard_dtype,
    split_documents,
)
from scratchlm.errors import ScratchLMError
from scratchlm.interop.tokenizer_files import load_tokenizer
from scratchlm.tokenizer import Tokenizer
from scratchlm.tokenizer.corpus import expand_inputs


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, corpus, trained) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards") / "out"
    meta = prepare_shards(
        [corpus], trained, out, val_fraction=0.25, shard_tokens=4_000, block_bytes=4_096, seed=3
    )
    return out, meta


def read_split(out: Path, meta: dict, split: str) -> list[int]:
    parts = [
        np.fromfile(out / s["file"], dtype="<" + np.dtype(meta["dtype"]).str[1:])
        for s in meta["shards"][split]
    ]
    return np.concatenate(parts).tolist() if parts else []


def expected_split(files, tok, is_val_wanted: bool, seed: int, val_fraction: float) -> list[int]:
    docs, _ = find_documents(files)
    is_val = split_documents(len(docs), val_fraction, seed)
    ids: list[int] = []
    for doc, is_val_doc in zip(docs, is_val):
        if is_val_doc == is_val_wanted:  # whole documents, each encoded in one go, then the separator
            ids += [*tok.encode_ordinary(Path(doc.path).read_text(encoding="utf-8")), tok.eot_id]
    return ids


def test_doctests():
    assert doctest.testmod(shards).failed == 0


def test_round_trip_by_documents(prepared, corpus, trained):
    out, meta = prepared
    files = expand_inputs([corpus])
    assert read_split(out, meta, "train") == expected_split(files, trained, False, seed=3, val_fraction=0.25)
    assert read_split(out, meta, "val") == expected_split(files, trained, True, seed=3, val_fraction=0.25)
    assert meta["documents"] == {"train": 7, "val": 2, "empty_skipped": 1}
    assert meta["dtype"] == "uint16" and meta["separator_id"] == trained.eot_id


def test_documents_never_straddle_train_and_val(prepared, trained):
    out, meta = prepared
    train = trained.decode(read_split(out, meta, "train")).split("<|endoftext|>")[:-1]
    val = trained.decode(read_split(out, meta, "val")).split("<|endoftext|>")[:-1]
    assert len(train) == 7 and len(val) == 2 and not set(train) & set(val)


def test_shards_have_the_requested_size_and_meta_checksums(prepared):
    out, meta = prepared
    for split in ("train", "val"):
        listed = meta["shards"][split]
        assert [s["file"] for s in listed] == [f"{split}_{i:05d}.bin" for i in range(len(listed))]
        assert all(s["tokens"] == 4_000 for s in listed[:-1]) and 0 < listed[-1]["tokens"] <= 4_000
        for s in listed:
            data = (out / s["file"]).read_bytes()
            assert len(data) == 2 * s["tokens"] and hashlib.sha256(data).hexdigest() == s["sha256"]
        assert meta["tokens"][split] == sum(s["tokens"] for s in listed)
    assert not list(out.glob("*.tmp"))
    assert json.loads((out / "meta.json").read_text()) == meta


def test_the_tokenizer_travels_with_the_shards(prepared, trained):
    out, meta = prepared
    tok = load_tokenizer(out / meta["tokenizer"]["dir"])
    assert tok.fingerprint == meta["tokenizer"]["fingerprint"] == trained.fingerprint


def test_worker_processes_write_the_same_shards(prepared, corpus, trained, tmp_path):
    _, meta = prepared
    again = prepare_shards(
        [corpus],
        trained,
        tmp_path / "p",
        val_fraction=0.25,
        shard_tokens=4_000,
        block_bytes=4_096,
        seed=3,
        workers=2,
    )
    assert again["shards"] == meta["shards"]


def test_gpt2_by_name(tmp_path, gpt2, tiktoken_gpt2):
    (tmp_path / "a.txt").write_text("Hello world.\nA second line.\n")
    meta = prepare_shards([tmp_path / "a.txt"], "gpt2", tmp_path / "o", val_fraction=0)
    assert meta["tokenizer"]["spec"] == "gpt2" and meta["tokenizer"]["fingerprint"] == gpt2.fingerprint
    expected = [*tiktoken_gpt2.encode_ordinary("Hello world.\nA second line.\n"), 50256]
    assert read_split(tmp_path / "o", meta, "train") == expected
    assert load_tokenizer(tmp_path / "o" / "tokenizer").fingerprint == gpt2.fingerprint


def test_split_documents_is_seeded_and_never_empties_a_split():
    assert split_documents(100, 0.1, seed=1) == split_documents(100, 0.1, seed=1)
    assert split_documents(100, 0.1, seed=1) != split_documents(100, 0.1, seed=2)
    assert sum(split_documents(100, 0.1)) == 10
    assert sum(split_documents(3, 0.01)) == 1 and sum(split_documents(2, 0.99)) == 1
    assert not any(split_documents(50, 0.0))


def test_dtype_choice():
    assert shard_dtype(50_257) == shard_dtype(65_536) == "uint16"
    assert shard_dtype(65_537) == shard_dtype(100_277) == "uint32"


def test_a_vocabulary_over_65536_ids_is_stored_as_uint32(tmp_path):
    tok = Tokenizer({bytes([b]): b for b in range(256)}, r"\S+|\s+", {"<|endoftext|>": 70_000}, name="big")
    (tmp_path / "a.txt").write_text("ab c")
    (tmp_path / "b.txt").write_text("d")
    meta = prepare_shards([tmp_path / "a.txt", tmp_path / "b.txt"], tok, tmp_path / "o", val_fraction=0)
    assert meta["dtype"] == "uint32"
    data = np.fromfile(tmp_path / "o" / "train_00000.bin", dtype="<u4").tolist()
    assert data == [97, 98, 32, 99, 70_000, 100, 70_000]


def test_one_document_is_cut_at_a_line_boundary(tmp_path, trained):
    lines = [f"line {i}: some words here\n" for i in range(100)]
    (tmp_path / "one.txt").write_text("".join(lines))
    meta = prepare_shards(tmp_path / "one.txt", trained, tmp_path / "o", val_fraction=0.1, block_bytes=512)
    train = trained.decode(read_split(tmp_path / "o", meta, "train"))
    val = trained.decode(read_split(tmp_path / "o", meta, "val"))
    assert train == "".join(lines[:90]) + "<|endoftext|>" and val == "".join(lines[90:]) + "<|endoftext|>"
    assert "line boundary" in meta["split_note"] and meta["documents"] == {
        "train": 1,
        "val": 1,
        "empty_skipped": 0,
    }


def test_a_big_document_is_tokenized_block_by_block_with_the_same_ids(tmp_path, trained, stdlib_text):
    text = stdlib_text[:60_000]
    (tmp_path / "big.txt").write_text(text)
    meta = prepare_shards([tmp_path / "big.txt"], trained, tmp_path / "o", val_fraction=0, block_bytes=1_000)
    assert read_split(tmp_path / "o", meta, "train") == [*trained.encode_ordinary(text), trained.eot_id]
    assert meta["tokens"]["val"] == 0 and meta["shards"]["val"] == []


def test_corpus_text_never_becomes_a_special_token(tmp_path, trained):
    (tmp_path / "a.txt").write_text("x <|endoftext|> y")
    meta = prepare_shards([tmp_path / "a.txt"], trained, tmp_path / "o", val_fraction=0)
    assert (
        read_split(tmp_path / "o", meta, "train").count(trained.eot_id) == 1
    )  # only the separator we append


@pytest.mark.parametrize("separator", ["\n===\n", regex.compile(r"\n=+\n")], ids=["literal", "regex"])
def test_documents_within_files(tmp_path, trained, separator):
    docs = [f"document {i}\nwith two lines" for i in range(12)]
    (tmp_path / "a.txt").write_text("\n===\n".join(docs[:7]) + "\n===\n")  # a trailing separator: one empty
    (tmp_path / "b.txt").write_text("\n===\n".join(docs[7:]))
    meta = prepare_shards(
        [tmp_path],
        trained,
        tmp_path / "o",
        val_fraction=0.25,
        doc_separator=separator,
        block_bytes=16,
        seed=5,
    )
    assert meta["documents"] == {"train": 9, "val": 3, "empty_skipped": 1}
    train = trained.decode(read_split(tmp_path / "o", meta, "train")).split("<|endoftext|>")[:-1]
    val = trained.decode(read_split(tmp_path / "o", meta, "val")).split("<|endoftext|>")[:-1]
    assert sorted(train + val) == sorted(docs) and not set(train) & set(val)
    kind = "literal" if isinstance(separator, str) else "regex"
    assert kind in meta["doc_separator"]


def test_a_file_named_twice_and_the_output_inside_the_input_are_read_once(tmp_path, trained):
    (tmp_path / "a.txt").write_text("alpha beta\n" * 20)
    (tmp_path / "b.txt").write_text("gamma\n" * 20)
    out = tmp_path / "shards"
    prepare_shards([tmp_path, tmp_path / "a.txt"], trained, out, val_fraction=0)
    # the second run sees out/meta.json and out/tokenizer/*.json under the input directory: not inputs
    meta = prepare_shards([tmp_path, out / ".." / "a.txt"], trained, out, val_fraction=0, overwrite=True)
    assert meta["files"] == 2 and meta["documents"]["train"] == 2


def test_a_separator_spanning_two_blocks_is_found(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"first document." + b"\n" + b"<<SEP>>" * 3 + b"\nsecond.\nx")
    docs, _ = find_documents([path], "\n<<SEP>><<SEP>><<SEP>>\n", block_bytes=4)
    assert [path.read_bytes()[d.start : d.end] for d in docs] == [b"first document.", b"second.\nx"]


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


def test_all_empty_files_is_an_error(tmp_path, trained):
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(ScratchLMError, match="all 2 document"):
        prepare_shards([tmp_path], trained, tmp_path / "o")


def test_a_missing_path_is_an_error(tmp_path, trained):
    with pytest.raises(ScratchLMError, match="no such file"):
        prepare_shards([tmp_path / "nope.txt"], trained, tmp_path / "o")


def test_non_utf8_names_the_file_and_offset_and_leaves_no_shards(tmp_path, trained):
    (tmp_path / "a.txt").write_text("good text\n" * 50)
    (tmp_path / "b.txt").write_bytes(b"bad \xff byte")
    with pytest.raises(ScratchLMError, match=r"b\.txt: not valid UTF-8 \(byte offset 4\)"):
        prepare_shards([tmp_path / "a.txt", tmp_path / "b.txt"], trained, tmp_path / "o", shard_tokens=10)
    assert not list((tmp_path / "o").glob("*.bin*")) and not (tmp_path / "o" / "meta.json").exists()


def test_a_tokenizer_without_endoftext_needs_a_separator_id(tmp_path):
    tok = Tokenizer({bytes([b]): b for b in range(256)}, r"\S+|\s+", name="bytes")
    (tmp_path / "a.txt").write_text("abc")
    with pytest.raises(ScratchLMError, match=r"no <\|endoftext\|>"):
        prepare_shards([tmp_path / "a.txt"], tok, tmp_path / "o")
    meta = prepare_shards([tmp_path / "a.txt"], tok, tmp_path / "o", separator_id=10, val_fraction=0)
    assert read_split(tmp_path / "o", meta, "train") == [97, 98, 99, 10]


def test_existing_shards_are_kept_unless_overwrite(prepared, corpus, trained):
    out, _ = prepared
    with pytest.raises(ScratchLMError, match="already holds shards"):
        prepare_shards([corpus], trained, out)
    assert (out / "meta.json").exists()


def test_overwrite_removes_old_shards(tmp_path, trained):
    (tmp_path / "a.txt").write_text("hello world\n" * 100)
    prepare_shards([tmp_path / "a.txt"], trained, tmp_path / "o", shard_tokens=50)
    meta = prepare_shards([tmp_path / "a.txt"], trained, tmp_path / "o", shard_tokens=1_000, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "o").glob("*.bin")) == ["train_00000.bin", "val_00000.bin"]
    check_shards(tmp_path / "o", meta, verify=True)
