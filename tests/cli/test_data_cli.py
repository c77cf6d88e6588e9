"""`scratchlm data prepare|info|windows` through `main(argv)`: summaries, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from scratchlm.cli.main import main


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, trained):
    """The small trained tokenizer as a directory, so prepare does not pay for saving GPT-2."""
    d = tmp_path_factory.mktemp("tok")
    trained.save(d / "scratchlm_tokenizer.json")
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, stdlib_text):
    d = tmp_path_factory.mktemp("corpus")
    for i in range(4):
        (d / f"doc{i}.txt").write_text(stdlib_text[i * 20_000 : (i + 1) * 20_000], encoding="utf-8")
    (d / "empty.txt").write_text("")
    return d


def prepare(corpus, tok_dir, out, *extra) -> int:
    return main(["data", "prepare", "-i", str(corpus), "-t", str(tok_dir), "-o", str(out), "-q", *extra])


def test_prepare_then_info(corpus, tok_dir, tmp_path, capsys):
    out = tmp_path / "shards"
    assert prepare(corpus, tok_dir, out, "--val-fraction", "0.25", "--shard-tokens", "5k") == 0
    printed = capsys.readouterr().out
    assert "documents  4 (train 3, val 1), 1 empty skipped" in printed
    assert "uint16 (vocab 1,000), separator id 999" in printed and "tokens/s" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert all(s["tokens"] <= 5_000 for s in meta["shards"]["train"]) and len(meta["shards"]["train"]) > 1

    assert main(["data", "info", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "documents  train 3, val 1, empty skipped 1" in printed
    assert f"checksums  ok ({sum(len(s) for s in meta['shards'].values())} files)" in printed


def test_prepare_one_file_says_where_it_was_cut(tmp_path, tok_dir, capsys):
    (tmp_path / "one.txt").write_text("".join(f"line {i}\n" for i in range(200)))
    assert prepare(tmp_path / "one.txt", tok_dir, tmp_path / "o") == 0
    assert "note: one document, cut at a line boundary" in capsys.readouterr().out


def test_prepare_with_a_document_separator(tmp_path, tok_dir, capsys):
    (tmp_path / "a.txt").write_text("first doc\n\n\nsecond doc\n\n\nthird doc")
    assert prepare(tmp_path / "a.txt", tok_dir, tmp_path / "o", "--doc-separator", r"\n\n\n") == 0
    assert "documents  3 (train 2, val 1)" in capsys.readouterr().out
    assert prepare(tmp_path / "a.txt", tok_dir, tmp_path / "r", "--doc-separator-regex", r"\n{3,}") == 0
    assert "documents  3 (train 2, val 1)" in capsys.readouterr().out


def test_windows_prints_the_books_first_batch(tmp_path, capsys):
    (tmp_path / "verdict.txt").write_text(
        "I HAD always thought Jack Gisburn rather a cheap genius--though a good"
    )
    argv = [
        "data",
        "windows",
        "-f",
        str(tmp_path / "verdict.txt"),
        "--batch-size",
        "2",
        "--limit",
        "2",
        "--decode",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("17 tokens -> 4 windows of 4 (stride 4) -> 2 batches of up to 2")
    assert "inputs:\ntensor([[  40,  367, 2885, 1464],\n        [1807, 3619,  402,  271]])" in printed
    assert "targets:\ntensor([[  367,  2885,  1464,  1807]," in printed
    assert "'I HAD always' -> ' HAD always thought'" in printed
    assert printed.count("batch ") == 2


def test_windows_of_an_argument_with_a_stride(capsys):
    assert (
        main(["data", "windows", "one two three four five six", "--context-length", "2", "--stride", "1"])
        == 0
    )
    assert capsys.readouterr().out.startswith("6 tokens -> 4 windows of 2 (stride 1)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "prepare", "-q", "-i", "/nonexistent/x.txt", "-o", "{tmp}/o"], "no such file or directory"),
        (["data", "info", "{tmp}"], "no meta.json"),
        (["data", "windows", "too short", "--context-length", "4"], "needs at least 5 tokens"),
        (["data", "windows", "a b c d e f", "--stride", "0"], "stride must be at least 1"),
        (
            ["data", "prepare", "-q", "-i", "{tmp}/bad.txt", "-o", "{tmp}/o"],
            "bad.txt: not valid UTF-8 (byte offset 1)",
        ),
    ],
    ids=["missing-input", "no-meta", "too-short", "stride", "not-utf8"],
)
def test_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "bad.txt").write_bytes(b"a\xffb")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1 and message in err


def test_prepare_refuses_to_mix_with_old_shards(corpus, tok_dir, tmp_path, capsys):
    assert prepare(corpus, tok_dir, tmp_path / "o") == 0
    assert prepare(corpus, tok_dir, tmp_path / "o") == 2
    assert "already holds shards" in capsys.readouterr().err
    assert prepare(corpus, tok_dir, tmp_path / "o", "--overwrite") == 0


def test_info_verify_catches_a_changed_shard(corpus, tok_dir, tmp_path, capsys):
    assert prepare(corpus, tok_dir, tmp_path / "o") == 0
    shard = tmp_path / "o" / "train_00000.bin"
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.write_bytes(bytes(data))
    assert main(["data", "info", str(tmp_path / "o")]) == 0
    assert main(["data", "info", str(tmp_path / "o"), "--verify"]) == 2
    assert "train_00000.bin: checksum mismatch" in capsys.readouterr().err
