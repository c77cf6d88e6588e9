"""`scratchlm finetune classify` and `scratchlm classify` end to end through `main`; one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scratchlm.cli.main import main
from tests.finetune.test_classify import keyword_rows, save_base, write_tsv


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A classifier fine-tuned through the CLI on a TSV without a header (fields by index)."""
    tmp = tmp_path_factory.mktemp("cli")
    base = save_base(tmp / "base")
    data = write_tsv(tmp / "kw.tsv", keyword_rows(80))
    argv = ["finetune", "classify", "--model", str(base), "--data", data, "--out", str(tmp / "run")]
    argv += ["--classify.text_field", "1", "--classify.label_field", "0", "--train-layers", "all"]
    argv += ["--lr", "5e-3", "--batch-size", "16", "--epochs", "8", "--train.decay", "cosine"]
    argv += ["--device", "cpu", "-q"]
    return tmp, main(argv)


def test_finetune_classify_prints_the_test_metrics(trained_run, capsys):
    tmp, code = trained_run
    assert code == 0
    assert (tmp / "run" / "model" / "model.safetensors").is_file()
    result = json.loads((tmp / "run" / "eval.json").read_text())
    assert result["test"]["accuracy"] >= 0.9


def test_classify_texts_on_stdout(trained_run, capsys):
    tmp, _ = trained_run
    assert main(["classify", "--model", str(tmp / "run"), "pizza for my day", "a new computer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["label", "food", "sports", "tech", "text"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["food", "tech"]
    assert lines[1].endswith("\tpizza for my day")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_classify_a_file_to_csv_or_jsonl(trained_run, capsys, suffix):
    tmp, _ = trained_run
    (tmp / "in.txt").write_text("football then\n\nmy pizza\n", encoding="utf-8")
    out = tmp / f"preds{suffix}"
    assert (
        main(["classify", "-m", str(tmp / "run" / "model"), "--input", str(tmp / "in.txt"), "-o", str(out)])
        == 0
    )
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert [r["label"] for r in rows] == ["sports", "food"]
        assert set(rows[0]) == {"text", "label", "prob_food", "prob_sports", "prob_tech"}
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["text"] for r in rows] == ["football then", "my pizza"]
        assert sum(rows[1]["probabilities"].values()) == pytest.approx(1.0)


def test_classify_reads_a_column_of_a_jsonl_file(trained_run, capsys):
    tmp, _ = trained_run
    (tmp / "in.jsonl").write_text('{"msg": "computer now", "id": 1}\n', encoding="utf-8")
    argv = ["classify", "-m", str(tmp / "run"), "-i", str(tmp / "in.jsonl"), "--text-field", "msg"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("tech\t")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--classify.split", "0.7,0.3"], "three fractions train,val,test"),
        (["--classify.label_field", "label"], "no column 'label'"),
        (["--classify.max_length", "500"], "longer than the model's context length"),
        (["--train-layers", "top"], "head, last-N"),
        (["--lora-rank", "2", "--lora.targets", "qkv,head"], "leave 'head' out"),
        (["--classify.balance", "weights", "--data", "EMPTY"], "no rows"),
        (["--data", "ONECLASS"], "only one class"),
        (["--classify.text_feld", "1"], "did you mean --classify.text_field?"),
        (["--resume"], "no run to resume"),
    ],
)
def test_finetune_errors_are_one_line(trained_run, tmp_path, capsys, argv, message):
    tmp, _ = trained_run
    (tmp_path / "empty.tsv").write_text("")
    write_tsv(tmp_path / "one.tsv", [("ham", "hello there")] * 10)
    argv = [
        str(tmp_path / "empty.tsv") if a == "EMPTY" else str(tmp_path / "one.tsv") if a == "ONECLASS" else a
        for a in argv
    ]
    base = [
        "finetune",
        "classify",
        "-m",
        str(tmp / "base"),
        "-d",
        str(tmp / "kw.tsv"),
        "-o",
        str(tmp_path / "r"),
    ]
    assert main([*base, "--classify.text_field", "1", "--classify.label_field", "0", "-q", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-m", "BASE", "hi"], "not a classifier"),
        (["-m", "RUN", "hi", "-o", "x.xlsx"], "use a .csv or .jsonl file"),
        (["-m", "RUN", "hi", "-i", "x.txt"], "not both"),
        (["-m", "RUN", "-i", "/no/such.txt"], "no such file"),
    ],
)
def test_classify_errors_are_one_line(trained_run, capsys, argv, message):
    tmp, _ = trained_run
    argv = [str(tmp / "base") if a == "BASE" else str(tmp / "run") if a == "RUN" else a for a in argv]
    assert main(["classify", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1 and message in err, err


def test_the_run_directory_is_not_overwritten(trained_run, capsys):
    tmp, _ = trained_run
    argv = [
        "finetune",
        "classify",
        "-m",
        str(tmp / "base"),
        "-d",
        str(tmp / "kw.tsv"),
        "-o",
        str(tmp / "run"),
    ]
    assert main([*argv, "--classify.text_field", "1", "--classify.label_field", "0", "-q"]) == 2
    assert "already holds a run: pass --resume" in capsys.readouterr().err
    assert main([*argv, "--resume", "-q"]) == 2
    assert "the run is finished" in capsys.readouterr().err
