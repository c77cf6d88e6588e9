"""`scratchlm tokenizer ...` end to end through `main(argv)`: outputs, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scratchlm.cli.main import main
from scratchlm.cli.tokenizer import parse_ids
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import load_tokenizer
from scratchlm.tokenizer.display import render_tokens


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, stdlib_text):
    d = tmp_path_factory.mktemp("corpus")
    (d / "a.txt").write_text(stdlib_text[:200_000], encoding="utf-8")
    (d / "b.md").write_text(stdlib_text[200_000:300_000], encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("tok") / "mytok"
    assert main(["tokenizer", "train", "-i", str(corpus), "-o", str(out), "--vocab-size", "500", "-q"]) == 0
    return out


def test_train_writes_a_directory_every_tool_reads(trained_dir, capsys):
    tok = load_tokenizer(trained_dir)
    assert tok.vocab_size == 500 and tok.eot_id == 499
    assert {p.name for p in trained_dir.iterdir()} == {
        "scratchlm_tokenizer.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "mytok.tiktoken",
    }


def test_train_reports_an_early_stop(tmp_path, capsys):
    (tmp_path / "tiny.txt").write_text("abc abc abc")
    assert (
        main(["tokenizer", "train", "-i", str(tmp_path / "tiny.txt"), "-o", str(tmp_path / "t"), "-q"]) == 0
    )
    assert "stopped at" in capsys.readouterr().out


def test_encode_decode_round_trip(trained_dir, capsys):
    text = "def f(x):\n    return x + 1  # naïve 🤖"
    assert main(["tokenizer", "encode", "-t", str(trained_dir), text]) == 0
    ids = capsys.readouterr().out.split()
    assert main(["tokenizer", "decode", "-t", str(trained_dir), *ids]) == 0
    assert capsys.readouterr().out == text + "\n"


def test_encode_gpt2_json_and_methods(capsys):
    assert main(["tokenizer", "encode", "hello world", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [31373, 995]
    assert main(["tokenizer", "encode", "hello world", "--method", "reference"]) == 0
    assert capsys.readouterr().out.split() == ["31373", "995"]


def test_encode_from_file(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world")
    assert main(["tokenizer", "encode", "-f", str(tmp_path / "t.txt")]) == 0
    assert capsys.readouterr().out.split() == ["31373", "995"]


def test_special_tokens_need_permission(capsys):
    assert main(["tokenizer", "encode", "a<|endoftext|>"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "special token '<|endoftext|>'" in err
    assert main(["tokenizer", "encode", "a<|endoftext|>", "--allow-special"]) == 0
    assert capsys.readouterr().out.split() == ["64", "50256"]


def test_stats(trained_dir, corpus, capsys):
    assert main(["tokenizer", "stats", "-t", str(trained_dir), "-i", str(corpus / "a.txt")]) == 0
    out = capsys.readouterr().out
    assert "bytes / token" in out and "vocab usage" in out and "of 500 tokens occur" in out


def test_show_plain_and_colour(capsys):
    assert main(["tokenizer", "show", "hello world", "--color", "never"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "hello| world|" and out[1].split() == ["31373", "995"]
    assert main(["tokenizer", "show", "hello world", "--color", "always"]) == 0
    assert "\x1b[30;48;5;" in capsys.readouterr().out


def test_render_wraps_and_escapes():
    lines = render_tokens(["a\n", "bb", "c"], [1, 22, 333], color=False, width=7).splitlines()
    assert lines == ["a\\n|bb|", "1   22", "c  |", "333"]


def test_word_tokenizer_from_the_cli(tmp_path, corpus, capsys):
    out = tmp_path / "words"
    assert main(["tokenizer", "train", "--kind", "word", "-i", str(corpus / "a.txt"), "-o", str(out)]) == 0
    assert main(["tokenizer", "encode", "-t", str(out), "the zzzqqq"]) == 0
    ids = capsys.readouterr().out.split()[-2:]
    assert main(["tokenizer", "decode", "-t", str(out), *ids]) == 0
    assert capsys.readouterr().out.strip() == "the <|unk|>"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tokenizer", "train", "-i", "/no/such", "-o", "x"], "/no/such: no such file or directory"),
        (["tokenizer", "train", "-i", "{empty}", "-o", "{tmp}/o", "-q"], "corpus is empty"),
        (["tokenizer", "train", "-i", "{latin1}", "-o", "{tmp}/o", "-q"], "not valid UTF-8"),
        (["tokenizer", "train", "-i", "{latin1}", "-o", "{tmp}/o", "--vocab-size", "100"], "too small"),
        (["tokenizer", "encode", "-t", "/no/tok", "x"], "no such tokenizer"),
        (["tokenizer", "decode", "1", "x"], "ids must be integers"),
        (["tokenizer", "decode", "99999999"], "not in this tokenizer"),
        (["tokenizer", "encode", "-f", "/no/file.txt"], "no such file"),
        (["tokenizer", "stats", "-i", "/no/dir"], "no such file or directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    fill = {"{empty}": str(tmp_path / "empty.txt"), "{latin1}": str(tmp_path / "latin1.txt")}
    argv = [fill.get(a, a.replace("{tmp}", str(tmp_path))) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1
    assert message in err


def test_parse_ids():
    assert parse_ids(["1 2,3"]) == [1, 2, 3]
    assert parse_ids(["[4, 5]"]) == [4, 5]
    with pytest.raises(ScratchLMError):
        parse_ids(["[1,"])


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "scratchlm", "tokenizer", "encode", "hello world"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.stdout.split() == ["31373", "995"]


def test_special_token_cli_message_and_text_mode(capsys):
    assert main(["tokenizer", "encode", "a<|endoftext|>"]) == 2
    assert "--special-as-text" in capsys.readouterr().err
    assert main(["tokenizer", "encode", "a<|endoftext|>", "--special-as-text"]) == 0
    assert "50256" not in capsys.readouterr().out.split()


def test_stdin_must_be_utf8(monkeypatch, capsys):
    import io

    class FakeStdin(io.TextIOWrapper):
        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", FakeStdin(io.BytesIO(b"a\xffb")))
    assert main(["tokenizer", "encode"]) == 2
    assert "stdin: not valid UTF-8 (byte offset 1)" in capsys.readouterr().err


def test_show_survives_undecodable_argv_and_wide_characters(capsys):
    assert main(["tokenizer", "show", "a\udcffb 日本", "--color", "never"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "\ufffd" in lines[0]
    assert render_tokens(["日本"], [1], color=False, width=80).splitlines() == ["日本|", "1"]


def test_bad_output_path_fails_before_training(tmp_path, corpus, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["tokenizer", "train", "-i", str(corpus), "-o", str(tmp_path / "file" / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1


def test_tiktoken_file_needs_a_pattern(trained_dir, capsys):
    ranks = str(trained_dir / "mytok.tiktoken")
    assert main(["tokenizer", "encode", "-t", ranks, "hello"]) == 2
    assert "holds ranks only" in capsys.readouterr().err
    assert main(["tokenizer", "encode", "-t", ranks, "--pattern", "gpt4", "hello world"]) == 0
    from_ranks = capsys.readouterr().out
    assert main(["tokenizer", "encode", "-t", str(trained_dir), "hello world"]) == 0
    assert capsys.readouterr().out == from_ranks


@pytest.mark.parametrize("ids", [["[1.7, true]"], ["-1"], ["1", "2.5"]])
def test_decode_rejects_non_integers_and_bad_ids(capsys, ids):
    assert main(["tokenizer", "decode", *ids]) == 2
    assert capsys.readouterr().err.startswith("scratchlm: error: ")
