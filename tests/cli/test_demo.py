"""`scratchlm demo` runs offline on the standard library and leaves a usable tokenizer behind."""

from __future__ import annotations

import pytest

from scratchlm.cli.main import main
from scratchlm.formats.tokenizer_files import load_tokenizer


@pytest.mark.slow
def test_demo_runs_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SCRATCHLM_DATA_DIR", raising=False)
    assert main(["demo", "--tour", "--out", str(tmp_path), "--max-mb", "0.5", "--vocab-size", "600"]) == 0
    out = capsys.readouterr().out
    assert "round trip decode(encode(text)) == text on held-out text: True" in out
    assert "refused" in out
    assert "at initialisation, ln(vocab) = 6.397" in out  # stages 2-5 ran on the trained tokenizer
    assert load_tokenizer(tmp_path / "tokenizer").vocab_size == 600


def test_demo_with_a_data_dir(tmp_path, capsys):
    (tmp_path / "tinyshakespeare.txt").write_text(
        "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 300
    )
    assert (
        main(
            [
                "demo",
                "--tour",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--vocab-size",
                "300",
            ]
        )
        == 0
    )
    assert "tiny Shakespeare" in capsys.readouterr().out


def test_demo_with_a_bad_data_dir(tmp_path, capsys):
    assert main(["demo", "--tour", "--data-dir", str(tmp_path)]) == 2
    assert "tinyshakespeare.txt: not found" in capsys.readouterr().err
