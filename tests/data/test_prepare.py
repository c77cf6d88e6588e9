"""Preparing token shards: documents, the train/val split, streaming writes, meta.json, and the errors."""

from __future__ import annotations

import doctest
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import regex

from scratchlm.data import prepare
from scratchlm.data.prepare import find_documents, prepare_shards, split_documents
from scratchlm.data.shards import check_shards
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import load_tokenizer
from scratchlm.tokenizer import Tokenizer
from scratchlm.tokenizer.corpus import expand_inputs


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
    assert doctest.testmod(prepare).failed == 0


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


# ---- errors ---------------------------------------------------------------------------------------------
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
