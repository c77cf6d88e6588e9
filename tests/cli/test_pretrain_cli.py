"""`scratchlm pretrain`: YAML + overrides parse into one RunConfig; bad settings are one-line errors."""

from __future__ import annotations

import argparse
import json

import pytest

from scratchlm.cli.main import main
from scratchlm.cli.run_args import add_run_arguments, run_config
from scratchlm.errors import ScratchLMError


def parse(kind, argv):
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, kind)
    return run_config(parser.parse_args(argv), kind)


def test_yaml_then_flags_then_aliases(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  preset: tiny\ntrain:\n  lr: 1e-3\n  max_steps: 5\n")
    argv = ["-c", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r"), "--train.max_steps", "7"]
    cfg = parse("pretrain", [*argv, "--data.inputs", "a,b.txt", "--seed", "5"])
    assert cfg.model.n_layers == 4 and cfg.train.lr == 0.001 and cfg.train.max_steps == 7
    assert cfg.data.inputs == ("a,b.txt",) and cfg.train.seed == 5  # paths are never split at commas
    assert cfg.kind == "pretrain"


def test_fine_tune_flags_compose_with_the_book_preset(tmp_path):
    cfg = parse("classify", ["-o", str(tmp_path), "-m", "base", "-d", "spam.tsv", "--lora-rank", "4"])
    assert cfg.train.init == "base" and cfg.classify.data == "spam.tsv"
    assert cfg.lora.rank == 4 and cfg.lora.alpha == 8 and cfg.classify.train_layers == "lora"
    assert cfg.train.beta2 == 0.999 and cfg.train.seed == 123
    cfg = parse("instruct", ["-o", str(tmp_path), "-m", "base", "-d", "q.json", "--lora-rank", "8"])
    assert cfg.train.lr == 5e-4 and cfg.kind == "instruct"
    cfg = parse("instruct", ["-o", str(tmp_path), "-m", "base", "--mask-prompt"])
    assert cfg.train.lr == 5e-5 and cfg.instruct.mask_prompt is True and cfg.lora is None
    cfg = parse("instruct", ["-o", str(tmp_path), "-m", "base", "--lora.targets", "qkv,head"])
    assert cfg.train.lr == 5e-4 and cfg.lora.targets == ("qkv", "head")


def test_task_aliases_are_their_settings_lists_included(tmp_path):
    argv = ["-o", str(tmp_path), "-d", "spam.tsv", "--text-field", "1", "--label-field", "0"]
    argv += [
        "--labels",
        "ham,spam",
        "--balance",
        "undersample",
        "--split",
        "0.8,0.1,0.1",
        "--max-length",
        "64",
    ]
    c = parse("classify", [*argv, "--select", "macro_f1"]).classify
    assert (c.text_field, c.label_field, c.labels, c.balance) == ("1", "0", ("ham", "spam"), "undersample")
    assert c.split == (0.8, 0.1, 0.1) and c.max_length == 64 and c.select == "macro_f1"
    i = parse(
        "instruct", ["-o", str(tmp_path), "--split", "0.8", "0.1", "0.1", "--max-length", "96"]
    ).instruct
    assert i.split == (0.8, 0.1, 0.1) and i.max_length == 96


def test_resume_reads_the_runs_config_and_checks_its_kind(tmp_path):
    saved = parse("classify", ["-o", str(tmp_path), "-m", "base", "--lr", "0.01"])
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    cfg = parse("classify", ["-o", str(tmp_path), "--resume", "--train.max_steps", "9"])
    assert cfg.train.lr == 0.01 and cfg.train.max_steps == 9 and cfg.train.init == "base"
    with pytest.raises(ScratchLMError, match="is a classify run: it cannot be resumed as instruct"):
        parse("instruct", ["-o", str(tmp_path), "--resume"])


@pytest.mark.parametrize(
    ("argv", "yaml_text", "message"),
    [
        ([], None, "no training data"),
        (["--train.lr", "fast"], None, "TrainConfig.lr must be a number"),
        (["--optim.lr", "1"], None, "unknown section"),
        (["--train.batchsize", "1"], None, "did you mean --train.batch_size?"),
        (["--train.lr"], None, "expected one argument"),
        (["--bogus"], None, "unrecognized argument --bogus"),
        ([], "model: [1, 2", "not valid YAML"),
        (["--data.inputs", "/no/such.txt"], None, "no such file or directory"),
        (["--model.emb_dim", "100", "--model.n_heads", "3"], None, "not divisible"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, argv, yaml_text, message):
    extra = []
    if yaml_text is not None:
        (tmp_path / "bad.yaml").write_text(yaml_text)
        extra = ["-c", str(tmp_path / "bad.yaml")]
    assert main(["pretrain", "-o", str(tmp_path / "run"), "-q", *extra, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchlm: error: ") and err.count("\n") == 1 and message in err


def test_other_commands_still_reject_unknown_flags(capsys):
    with pytest.raises(SystemExit):
        main(["tokenizer", "encode", "hi", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
