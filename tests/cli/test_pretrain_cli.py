"""`scratchlm pretrain`: YAML + overrides parse into one RunConfig; bad settings are one-line errors."""

from __future__ import annotations

import pytest

from scratchlm.cli.main import main
from scratchlm.cli.pretrain import load_config, parse_overrides


def test_yaml_and_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  preset: tiny\ntrain:\n  lr: 1e-3\n  max_steps: 5\n")
    cfg = load_config(
        str(tmp_path / "c.yaml"), parse_overrides(["--train.max_steps", "7", "--data.inputs", "a"])
    )
    assert cfg.model.n_layers == 4 and cfg.train.lr == 0.001 and cfg.train.max_steps == 7
    assert cfg.data.inputs == ("a",)


@pytest.mark.parametrize(
    ("argv", "yaml_text", "message"),
    [
        ([], None, "no training data"),
        (["--train.lr", "fast"], None, "TrainConfig.lr must be a number"),
        (["--optim.lr", "1"], None, "unknown section"),
        (["--train.batchsize", "1"], None, "unknown setting"),
        (["--train.lr"], None, "needs a value"),
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
