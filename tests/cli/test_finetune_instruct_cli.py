"""`scratchlm finetune instruct`, `generate --chat` and `eval judge|metrics` end to end on a tiny model."""

from __future__ import annotations

import json

import pytest

from scratchlm.cli.main import main
from tests.fake_judge import FakeJudge
from tests.instruct_data import synthetic_records, tiny_model_dir, write_records


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("data") / "data.json", synthetic_records(60))


@pytest.fixture
def judge():
    server = FakeJudge()
    server.script = [(200, "Score: 75", 0.0, {})]
    yield server
    server.close()


def finetune_args(model_dir, data_file, out, *extra):
    return [
        "finetune", "instruct", "-m", str(model_dir), "-d", str(data_file), "-o", str(out),
        "--max-steps", "6", "--lr", "3e-3", "--max-new-tokens", "6", "--train.eval_interval", "3",
        "--instruct.split", "0.7,0.15,0.15", "--quiet", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_finetune_with_lora_and_judge_then_generate_and_eval(model_dir, data_file, tmp_path, judge, capsys):
    out = tmp_path / "run"
    argv = finetune_args(
        model_dir, data_file, out, "--lora-rank", "2", "--mask-prompt", "--template", "chatml"
    )
    assert main([*argv, "--judge-url", judge.url, "--judge-model", "fake"]) == 0
    printed = capsys.readouterr().out
    assert "test response perplexity" in printed and "judge fake: mean score 75.0" in printed
    assert {"model", "adapter", "responses.json", "eval.json", "metrics.jsonl", "loss.png"} <= {
        p.name for p in out.iterdir()
    }
    result = json.loads((out / "eval.json").read_text())
    assert result["judge"]["mean_score"] == 75 and result["judge"]["scored"] == result["responses"] == 9
    records = json.loads((out / "responses.json").read_text())
    assert all(r["judge_score"] == 75 for r in records)
    assert len(judge.requests) == 9

    chat = ["generate", "-m", str(out / "model"), "-p", "Repeat the word twice.", "--chat", "--input", "cat"]
    assert main([*chat, "-n", "5", "--device", "cpu"]) == 0
    assert not capsys.readouterr().out.startswith("<|im_start|>user")  # the reply alone, not the prompt

    assert main(["eval", "metrics", "-r", str(out / "responses.json")]) == 0
    assert "ROUGE-L" in capsys.readouterr().out
    judged = tmp_path / "judged.json"
    argv = ["eval", "judge", "-r", str(out / "responses.json"), "-o", str(judged)]
    assert main([*argv, "--judge-url", judge.url, "--judge-model", "fake"]) == 0
    assert "mean score 75.00 over 9 of 9" in capsys.readouterr().out
    assert [r["judge_score"] for r in json.loads(judged.read_text())] == [75] * 9


def test_full_finetune_with_book_split_order(model_dir, data_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(finetune_args(model_dir, data_file, out, "--instruct.split_seed", "none", "--baseline")) == 0
    printed = capsys.readouterr().out
    assert "run directory" in printed and "the base model on the same prompts: exact match" in printed
    assert "response_before" in json.loads((out / "responses.json").read_text())[0]
    assert not (out / "adapter").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr"] == 3e-3 and config["instruct"]["template"] == "alpaca"
    assert main(["generate", "-m", str(out / "model"), "-p", "Name a color.", "--chat", "-n", "3"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--instruct.split", "0.5,0.5"], "three fractions train,val,test"),
        (["--judge-url", "http://127.0.0.1:9/v1"], "both judge.url and judge.model are needed"),
        (["--instruct.max_length", "4096"], "longer than the model's context"),
        (["--template", "vicuna"], "vicuna"),
    ],
)
def test_errors_are_one_line(model_dir, data_file, tmp_path, capsys, argv, message):
    assert main(finetune_args(model_dir, data_file, tmp_path / "run", *argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_generate_chat_needs_a_template(tmp_path, capsys):
    model = tiny_model_dir(tmp_path / "plain")
    assert main(["generate", "-m", str(model), "-p", "Hi", "--chat"]) == 2
    assert "no chat template beside the model" in capsys.readouterr().err
    assert main(["generate", "-m", str(model), "-p", "Hi", "--chat", "--template", "phi3", "-n", "2"]) == 0
    assert main(["generate", "-m", str(model), "-p", "Hi", "--input", "x"]) == 2
    assert "go with --chat" in capsys.readouterr().err
