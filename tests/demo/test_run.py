"""The whole pipeline (`scratchlm demo`) on a tiny budget: every stage runs offline on the standard library,
writes its outputs, and a stage alone reuses what the others left."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter

import pytest

from scratchlm.demo import DemoConfig, run_demo
from scratchlm.demo.config import STAGE_NAMES
from scratchlm.demo.corpus import corpus, val_fraction
from scratchlm.demo.stages import STAGES, before_after
from scratchlm.errors import ScratchLMError
from tests.browser import CHROMIUM, DRIVER, chromium, render_page

pytestmark = pytest.mark.slow


def test_every_stage_on_a_tiny_budget(tmp_path, monkeypatch, capsys):
    said: list[str] = []
    cfg = DemoConfig(
        out=tmp_path, minutes=0.2, vocab_size=512, max_examples=24, show_progress=False, say=said.append
    )
    results = run_demo(cfg)
    assert list(results) == ["tokenize", "pretrain", "classify", "instruct", "chat"]
    assert results["tokenize"]["vocab_size"] == 512
    assert (
        results["pretrain"]["val_loss"] > 0
        and (tmp_path / "pretrain" / "checkpoints" / "latest.json").is_file()
    )
    check_the_classifier(tmp_path, results["classify"], said)
    scores = results["instruct"]
    saved = json.loads((tmp_path / "instruct" / "eval.json").read_text())
    assert scores["response_ppl"] == saved["test_response_ppl"] and scores["response_ppl"]["after"] > 0
    for key in ("rouge_l", "first_clause_match", "exact_match"):  # the run's own scores, before and after
        assert scores[key] == {"before": saved["before"][key], "after": saved[key]}
        assert 0 <= scores[key]["before"] <= 1 and 0 <= scores[key]["after"] <= 1
    responses = json.loads((tmp_path / "instruct" / "responses.json").read_text())
    assert len(responses) == saved["responses"] == 24 and all("response_before" in r for r in responses)
    assert len(results["chat"]["answers"]) == 3
    assert (tmp_path / "instruct" / "model" / "chat_template.json").is_file()
    assert json.loads((tmp_path / "demo.json").read_text()).keys() == results.keys()
    text = "\n".join(said)
    assert "test accuracy" in text and "serve it: scratchlm serve --model" in text
    page = (tmp_path / "report.html").read_text()
    assert "test accuracy" in page and page.count("data:image/png;base64,") == 2
    assert "http://" not in page and "https://" not in page and "<script" not in page
    md = (tmp_path / "report.md").read_text()
    assert "| classify |" in md and f"| ROUGE-L | {scores['rouge_l']['before']:.3f} | " in md
    corpus = tmp_path / "data" / "pretrain.txt"
    digest = hashlib.sha256(corpus.read_bytes()).hexdigest()[:16]
    assert f"{corpus}: {corpus.stat().st_size:,} bytes, SHA-256 {digest}" in md
    assert "| Python | " in md and "| questions | train 24, val 24, test 24" in md
    assert "| model | preset=modern-cpu, context_length=128" in md and "| budget shares | pretrain=0.5" in md
    shutil.copy(tmp_path / "report.html", tmp_path / "report-first.html")  # rendered last: it may skip

    said.clear()
    again = run_demo(DemoConfig(out=tmp_path, stages=("classify",), show_progress=False, say=said.append))
    assert "reusing" in said[1] and again["classify"]["test_accuracy"] == results["classify"]["test_accuracy"]

    with pytest.raises(ScratchLMError, match=r"holds a model pretrained on .*pretrain\.txt, not .*source"):
        run_demo(DemoConfig(out=tmp_path, stages=("pretrain",), with_source=0.1, say=said.append))

    # in a terminal, the chat stage asks for questions until an empty line
    questions = iter(["What does `json.dumps` do?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(questions))
    chat = run_demo(DemoConfig(out=tmp_path, stages=("chat",), interactive=True, say=said.append))
    assert chat["chat"]["answers"] == [] and next(questions, None) is None
    assert capsys.readouterr().out.endswith("\n")  # the reply, streamed to the terminal, then a new line
    assert "ask about the standard library" in said[-2]

    # a BPE learned from other text is not reused for pretraining on this one
    with pytest.raises(ScratchLMError, match="holds a BPE named demo-pretrain"):
        run_demo(DemoConfig(out=tmp_path, stages=("pretrain",), fresh=True, with_source=0.1, say=said.append))

    render_in_a_browser(tmp_path / "report-first.html", tmp_path / "screenshot.png")


def check_the_classifier(out, result, said):
    """The classify stage's result is the test split it wrote, scored as its eval.json says."""
    from scratchlm.data.stdlib import AREAS

    labels = result["labels"]
    assert labels == sorted(AREAS) and len(labels) == 6  # the six areas of the standard library
    saved = json.loads((out / "classify" / "eval.json").read_text())
    confusion = result["confusion"]
    assert saved["labels"] == labels and saved["test"]["confusion"] == confusion
    assert len(confusion) == 6 and all(len(row) == 6 for row in confusion)
    # a row per true label: its sum is how many test examples of that area the stage wrote
    rows = (out / "data" / "areas-test.tsv").read_text(encoding="utf-8").splitlines()
    written = Counter(row.split("\t")[0] for row in rows)
    assert [sum(row) for row in confusion] == [written[y] for y in labels]
    assert saved["examples"]["test"] == {y: written[y] for y in labels}
    assert all(1 <= written[y] <= 24 // 6 for y in labels)  # max_examples=24: at most 4 of each area
    correct, total = sum(confusion[i][i] for i in range(6)), sum(map(sum, confusion))
    assert total == len(rows)
    assert result["test_accuracy"] == pytest.approx(correct / total) == saved["test"]["accuracy"]
    assert f"test accuracy {correct / total:.1%} on modules never seen in training" in "\n".join(said)


def render_in_a_browser(page, screenshot):
    if not (CHROMIUM and DRIVER):
        pytest.skip("the browser check needs chromium and chromedriver (.ci/run installs them)")
    with chromium() as browser:
        widths = render_page(browser, page, screenshot)
        assert len(widths) == 2 and all(w > 0 for w in widths), widths
        assert browser.find_element("tag name", "h1").text == "scratchlm demo"


def test_the_stage_table_runs_each_stage_after_what_it_needs():
    assert tuple(stage.name for stage in STAGES) == STAGE_NAMES
    for stage in STAGES:
        assert all(STAGE_NAMES.index(need) < STAGE_NAMES.index(stage.name) for need in stage.needs)


def test_a_stage_without_its_inputs_says_what_to_run(tmp_path):
    with pytest.raises(ScratchLMError, match="--stage pretrain"):
        run_demo(DemoConfig(out=tmp_path, stages=("classify",), say=lambda s: None))
    with pytest.raises(
        ScratchLMError, match=r"instruct/model is missing: run `scratchlm demo --stage instruct`"
    ):
        run_demo(DemoConfig(out=tmp_path, stages=("chat",), say=lambda s: None))
    with pytest.raises(ScratchLMError, match="unknown stage"):
        run_demo(DemoConfig(out=tmp_path, stages=("deploy",)))
    with pytest.raises(ScratchLMError, match="positive"):
        run_demo(DemoConfig(out=tmp_path, minutes=0))
    for bad in ({"with_source": 5, "dataset": "tinyshakespeare"}, {"with_source": float("nan")}):
        with pytest.raises(ScratchLMError, match="--with-source"):
            run_demo(DemoConfig(out=tmp_path, **bad))


def test_scores_from_an_older_demo_json_still_report():
    assert before_after({"before": 0.25, "after": 0.5}, ".2f") == "0.25 -> 0.50"
    assert before_after(0.5, ".2f") == "n/a -> 0.50"  # demo.json before scores had a before


def test_the_tokenizer_can_learn_the_source_code_too(tmp_path):
    said: list[str] = []
    cfg = DemoConfig(out=tmp_path, stages=("tokenize",), vocab_size=300, with_source=0.3, say=said.append)
    run_demo(cfg)
    corpus = (tmp_path / "data" / "pretrain+source-0.3MB.txt").read_text()
    assert corpus.startswith("# module ") and "json.dumps\nSerialize ``obj``" in corpus
    assert "+ its source code" in said[1]
    # the outputs there were made from other text: reusing them would mix two demos
    with pytest.raises(ScratchLMError, match=r"pretrain\.txt as asked: add --fresh"):
        run_demo(DemoConfig(out=tmp_path, stages=("tokenize",), vocab_size=300, say=said.append))
    with pytest.raises(ScratchLMError, match="not 512"):
        run_demo(
            DemoConfig(out=tmp_path, stages=("tokenize",), vocab_size=512, with_source=0.3, say=said.append)
        )


def test_validation_is_the_same_documentation_with_or_without_the_code(tmp_path):
    from scratchlm.formats.tokenizer_files import load_tokenizer

    tails = []
    for source in (None, 0.3):
        cfg = DemoConfig(out=tmp_path / str(source), stages=("tokenize",), vocab_size=300, with_source=source)
        run_demo(cfg)
        text = corpus(cfg).read_text()
        tokenizer = load_tokenizer(cfg.out / "tokenizer")
        ids = tokenizer.encode_ordinary(text)
        cut = int(len(ids) * (1 - val_fraction(cfg, tokenizer, text)))
        tails.append(tokenizer.decode(ids[cut:]))
    assert abs(len(tails[0]) - len(tails[1])) < 20 and tails[0][-50_000:] == tails[1][-50_000:]
    assert 0.045 < len(tails[0]) / len(corpus(DemoConfig(out=tmp_path / "None")).read_text()) < 0.055


def test_pretraining_on_a_named_dataset(tmp_path, monkeypatch):
    from scratchlm.data import registry
    from scratchlm.data.registry import Dataset

    text = "It was the best of times, it was the worst of times.\n" * 400
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tale.txt").write_text(text)
    monkeypatch.setitem(
        registry.DATASETS,
        "tinyshakespeare",
        Dataset("tinyshakespeare", "https://x.invalid", "tale.txt", "t", "PD"),
    )
    said: list[str] = []
    cfg = DemoConfig(
        out=tmp_path / "demo",
        stages=("tokenize",),
        vocab_size=300,
        dataset="tinyshakespeare",
        data_dir=str(tmp_path / "data"),
        show_progress=False,
        say=said.append,
    )
    assert 256 < run_demo(cfg)["tokenize"]["vocab_size"] <= 300  # merges stop early on a tiny corpus
    assert any("corpus: tinyshakespeare" in line for line in said)
    with pytest.raises(ScratchLMError, match="text dataset"):
        run_demo(DemoConfig(out=tmp_path / "d2", stages=("tokenize",), dataset="sms-spam", say=said.append))
