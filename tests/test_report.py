"""The run report of a tiny pretraining run, a classification and an instruction fine-tune: both files are
written after the run returns (as the commands do),
hold the key numbers and the command, embed the PNGs as data URIs, load
nothing from the network, escape what the model wrote, and render in headless Chromium without errors."""

from __future__ import annotations

import json
import random

import pytest

from scratchlm.config import RunConfig, compose
from scratchlm.errors import ScratchLMError
from scratchlm.finetune.classify import finetune_classifier
from scratchlm.finetune.instruct import finetune_instruct
from scratchlm.formats.model_files import save_model
from scratchlm.formats.tokenizer_files import load_tokenizer, save_tokenizer
from scratchlm.report import write_report, write_report_safely
from scratchlm.tokenizer import WordTokenizer, train_bpe
from scratchlm.train.pretrain import pretrain
from scratchlm.train.runlog import read_metrics
from tests.browser import chromium, needs_browser, render_page
from tests.instruct_data import synthetic_records, tiny_model_dir, write_records
from tests.tiny import tiny_gpt

pytestmark = pytest.mark.slow

PROMPT = "<script>alert('prompt')</script>"
PNG = 'src="data:image/png;base64,'


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, stdlib_text):
    """Six steps of a one-layer GPT on standard-library text, evaluated (and sampled) every three."""
    tmp = tmp_path_factory.mktemp("pretrain")
    corpus = tmp / "corpus.txt"
    corpus.write_text(stdlib_text[:20_000], encoding="utf-8")
    save_tokenizer(train_bpe([stdlib_text[:20_000]], vocab_size=300), tmp / "tok")
    cfg = RunConfig.from_dict(
        {
            "model": {"preset": "tiny", "vocab_size": 300, "context_length": 16, "emb_dim": 32, "n_heads": 2},
            "data": {"inputs": [str(corpus)], "tokenizer": str(tmp / "tok")},
            "train": {
                "max_steps": 6,
                "batch_size": 4,
                "warmup_steps": 1,
                "log_interval": 1,
                "eval_interval": 3,
                "eval_batches": 1,
                "sample_prompt": PROMPT,
                "sample_tokens": 6,
                "device": "cpu",
                "keep_heap": False,
                "peak_flops": 1e12,
            },
        }
    )
    pretrain(cfg, tmp / "run", show_progress=False)
    write_report(tmp / "run")
    return tmp / "run"


def read(run, name="report.html") -> str:
    return (run / name).read_text(encoding="utf-8")


def assert_static(page: str, images: int) -> None:
    assert page.count(PNG) == images
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page


def test_pretraining_writes_its_report(pretrain_run):
    page, md = read(pretrain_run), read(pretrain_run, "report.md")
    evals = [r for r in read_metrics(pretrain_run) if "val_loss" in r]
    final = evals[-1]
    size = (pretrain_run.parent / "corpus.txt").stat().st_size
    for text in (page, md):
        assert f"final {final['val_loss']:.4f}" in text
        assert f"final {final['val_bpb']:.4f}" in text
        assert f"final {final['val_ppl']:.2f}" in text
        assert "tokens/s (median)" in text and "MFU (median)" in text
        assert load_tokenizer(pretrain_run / "tokenizer").fingerprint in text
        assert f"corpus.txt: {size:,} bytes" in text  # the input and its size
        assert "&lt;script&gt;alert" in text  # the sample prompt, escaped
        assert "No command was recorded" in text
    assert_static(page, images=2)  # loss.png, lr.png
    assert "](loss.png)" in md and "](lr.png)" in md
    assert page.count("<tr>") > 20


def test_model_text_is_escaped_and_the_command_kept(pretrain_run):
    with (pretrain_run / "samples.jsonl").open("a", encoding="utf-8") as f:
        f.write(
            json.dumps({"step": 7, "prompt": PROMPT, "text": "<img src=x onerror=alert(1)> | a & b"}) + "\n"
        )
    command = "scratchlm pretrain -c run.yaml -o run"
    write_report(pretrain_run, command)
    write_report(pretrain_run)  # a later report keeps the command
    write_report(pretrain_run, command + " --resume")
    page, md = read(pretrain_run), read(pretrain_run, "report.md")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; | a &amp; b" in page
    assert "<img src=x" not in md and "&lt;img src=x onerror=alert(1)&gt; &#124; a &amp; b" in md
    assert (pretrain_run / "command.txt").read_text() == f"{command}\n{command} --resume\n"
    assert f"{command}\n{command} --resume" in md
    assert_static(page, images=2)


def keyword_rows(n_per_class: int) -> list[tuple[str, str]]:
    rng = random.Random(0)
    rows = [
        (label, " ".join([*rng.sample(["the", "a", "big", "red", "day", "now"], 3), keyword]))
        for label, keyword in (("food", "pizza"), ("sports", "football"))
        for _ in range(n_per_class)
    ]
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classify")
    tokenizer = WordTokenizer.build(["the", "a", "big", "red", "day", "now", "pizza", "football"])
    model = tiny_gpt(vocab_size=tokenizer.vocab_size, context_length=16, n_layers=1)
    save_model(model, tmp / "base", tokenizer)
    (tmp / "kw.tsv").write_text("".join(f"{y}\t{x}\n" for y, x in keyword_rows(20)), encoding="utf-8")
    cfg = compose(
        "classify",
        {
            "train": {"init": str(tmp / "base"), "lr": 5e-3, "device": "cpu"},
            "classify": {"data": str(tmp / "kw.tsv"), "text_field": "1", "label_field": "0"}
            | {"train_layers": "all", "epochs": 2},
        },
    )
    command = "scratchlm finetune classify -m base -d kw.tsv -o run --classify.text_field 1"
    outcome = finetune_classifier(cfg, tmp / "run", show_progress=False)
    write_report(tmp / "run", command)
    return tmp / "run", outcome.result


def test_classification_report(classify_run):
    run, result = classify_run
    page, md = read(run), read(run, "report.md")
    test = result["test"]
    for text in (page, md):
        assert f"{test['accuracy']:.2%}" in text and f"{test['macro']['f1']:.4f}" in text
        assert "scratchlm finetune classify -m base" in text
        for label in ("food", "sports"):
            assert f"{test['per_class'][label]['recall']:.4f}" in text
        assert "true \\ predicted" in text and "kw.tsv: " in text
    assert_static(page, images=2)  # curves.png, confusion.png
    assert "](confusion.png)" in md


@pytest.fixture(scope="module")
def instruct_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("instruct")
    base = tiny_model_dir(tmp / "base")
    data = write_records(tmp / "data.json", synthetic_records(30))
    cfg = compose(
        "instruct",
        {
            "train": {"init": str(base), "max_steps": 4, "lr": 3e-3, "min_lr": 3e-4, "batch_size": 8}
            | {"eval_interval": 2, "seed": 0},
            "instruct": {"data": str(data), "split": [0.6, 0.2, 0.2], "eval_batch_size": 8, "baseline": True},
            "generate": {"max_new_tokens": 6},
        },
    )
    outcome = finetune_instruct(cfg, tmp / "run", show_progress=False)
    write_report(tmp / "run")
    return tmp / "run", outcome.result


def test_instruction_report_with_a_judge(instruct_run):
    run, result = instruct_run
    ppl = result["test_response_ppl"]
    md = read(run, "report.md")
    assert f"{ppl['before']:.2f} → {ppl['after']:.2f}" in md
    assert f"| ROUGE-L | {result['before']['rouge_l']:.4f} → {result['rouge_l']:.4f} |" in md
    assert "| instruction | reference | before | response |" in md
    # A judge's scores, as `scratchlm eval judge` would add them, and a response with markup in it.
    records = json.loads((run / "responses.json").read_text())
    for i, record in enumerate(records):
        record["judge_score"] = 10 * i
    records[0]["response"] = "<b>bold</b> & done"
    (run / "responses.json").write_text(json.dumps(records))
    write_report(run)  # `eval judge --out` leaves the scores in responses.json only: their mean is shown
    mean = sum(r["judge_score"] for r in records) / len(records)
    assert f"| judge score | {mean:.1f} |" in read(run, "report.md")
    saved = json.loads((run / "eval.json").read_text())
    saved["judge"] = {"judge_model": "fake-judge", "mean_score": 42.5, "scored": len(records), "unscored": 0}
    (run / "eval.json").write_text(json.dumps(saved))
    write_report(run)
    page, md = read(run), read(run, "report.md")
    for text in (page, md):
        assert f"{result['rouge_l']:.4f}" in text and f"{result['exact_match']:.1%}" in text
        assert "42.50" in text and "fake-judge" in text
        assert "&lt;b&gt;bold&lt;/b&gt; &amp; done" in text and "<b>bold" not in text
        assert records[0]["reference"] in text
    assert_static(page, images=2)  # loss.png, lr.png


def test_a_result_file_that_departs_from_its_declaration_is_named_not_fatal(classify_run, tmp_path):
    """eval.json is read by the names scratchlm.results declares: one from another version (here without
    its macro scores) leaves the numbers out and says where it departs, instead of failing the report."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(classify_run[0], run)
    saved = json.loads((run / "eval.json").read_text())
    del saved["test"]["macro"]
    (run / "eval.json").write_text(json.dumps(saved))
    write_report(run)
    md = read(run, "report.md")
    assert "## Result file" in md and "test.macro: missing" in md
    assert "Test evaluation" not in md and "| train loss |" in md  # the metrics still report


def test_any_metrics_directory_and_clear_failures(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"time": 100.0 + s, "step": s, "loss": 3.0 - s / 10}) + "\n" for s in (1, 2, 3))
        + '{"time": 1'  # a torn last line
    )
    write_report(tmp_path)
    assert "final 2.7000, best 2.7000 (step 3)" in read(tmp_path, "report.md")
    with pytest.raises(ScratchLMError, match="not a run directory"):
        write_report(tmp_path / "nothing")
    assert write_report_safely(tmp_path / "nothing") is None
    assert "warning: no run report" in capsys.readouterr().err


def test_the_command(pretrain_run, capsys):
    from scratchlm.cli.main import main

    assert main(["report", str(pretrain_run)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(pretrain_run / "checkpoints")]) == 2
    assert "not a run directory" in capsys.readouterr().err


@needs_browser
def test_reports_render_in_a_browser(pretrain_run, classify_run, instruct_run, tmp_path):
    with chromium() as browser:
        for run in (pretrain_run, classify_run[0], instruct_run[0]):
            widths = render_page(browser, run / "report.html", tmp_path / f"{run.parent.name}.png")
            assert len(widths) == 2 and all(w > 0 for w in widths), widths
            assert browser.find_element("tag name", "h1").text.startswith(run.name)
