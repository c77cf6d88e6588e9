"""Classification fine-tuning: the head reads the last real token (padding changes nothing), splits are
stratified and seeded, balancing and metrics are exact, freeze policies train what they say, and a tiny
GPT learns a keyword task end to end, saved and loaded back (LoRA merged, its adapter reloadable)."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from scratchlm.config import RunConfig, TrainConfig, compose
from scratchlm.data.classification import (
    ClassificationBatches,
    class_weights,
    pad_batch,
    read_labeled,
    read_rows,
    stratified_split,
    undersample,
)
from scratchlm.errors import ScratchLMError
from scratchlm.finetune.classify import (
    classification_loss,
    finetune_classifier,
    prepare_classifier,
    trainable_prefixes,
)
from scratchlm.finetune.classify_metrics import classification_report, confusion_matrix, format_report
from scratchlm.formats.model_files import load_classifier, load_model, save_model
from scratchlm.generate.classifier import Classifier
from scratchlm.interop.peft import load_peft_adapter
from scratchlm.model.heads import add_classifier_head, classify_logits
from scratchlm.model.lora import LoRAConfig
from scratchlm.tokenizer import WordTokenizer
from scratchlm.train.loop import train
from scratchlm.train.optim import build_optimizer
from tests.tiny import tiny_gpt

FILLER = ["the", "a", "one", "my", "our", "this", "that", "big", "small", "red", "blue", "old", "new"]
FILLER += ["good", "bad", "day", "night", "then", "now", "here"]
KEYWORDS = {"sports": "football", "food": "pizza", "tech": "computer"}


def keyword_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text): a few filler words with the class's keyword somewhere among them."""
    rng = random.Random(seed)
    rows = []
    for label, keyword in KEYWORDS.items():
        for _ in range(n_per_class):
            words = rng.choices(FILLER, k=rng.randint(2, 7))
            words.insert(rng.randint(0, len(words)), keyword)
            rows.append((label, " ".join(words)))
    rng.shuffle(rows)
    return rows


def write_tsv(path, rows) -> str:
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    return str(path)


def save_base(directory) -> str:
    """A tiny random GPT with a word tokenizer over the keyword task's words, saved as a model directory.
    (A word vocabulary keeps the embedding small: with GPT-2's 50,257 tokens, AdamW on the embedding
    would take most of each step.)"""
    tokenizer = WordTokenizer.build(FILLER + list(KEYWORDS.values()))
    return str(save_model(tiny_gpt(vocab_size=tokenizer.vocab_size), directory, tokenizer))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_base(tmp_path_factory.mktemp("base"))


# ---- the head and the last real token ------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    extra=st.integers(0, 8),
    pad_id=st.integers(0, 99),
    seed=st.integers(0, 1000),
)
def test_padding_never_changes_a_rows_logits(lengths, extra, pad_id, seed):
    g = torch.Generator().manual_seed(seed)
    model = add_classifier_head(tiny_gpt(vocab_size=100), 3, g).eval()
    rows = [torch.randint(0, 100, (n,), generator=g).tolist() for n in lengths]
    token_ids, last = pad_batch(rows, pad_id)
    token_ids = torch.cat([token_ids, torch.full((len(rows), extra), pad_id)], dim=1)  # more padding still
    with torch.no_grad():
        batched = classify_logits(model, token_ids, last)
        for i, row in enumerate(rows):
            alone = model(torch.tensor([row]))[0, -1]
            assert torch.allclose(batched[i], alone, atol=1e-5)


def test_pad_batch_marks_the_last_real_token():
    ids, last = pad_batch([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert last.tolist() == [2, 0, 1]


def test_classifier_head_replaces_and_unties_the_vocabulary_head():
    model = tiny_gpt(vocab_size=100)
    assert model.out_head.weight is model.emb.tok_emb.weight
    add_classifier_head(model, 4, torch.Generator().manual_seed(1))
    assert model.out_head.weight.shape == (4, 32) and model.out_head.bias.shape == (4,)
    assert model.out_head.weight is not model.emb.tok_emb.weight and not model.cfg.tie_embeddings
    again = add_classifier_head(tiny_gpt(vocab_size=100), 4, torch.Generator().manual_seed(1))
    assert torch.equal(again.out_head.weight, model.out_head.weight)  # the seed alone decides the head
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 4)


# ---- splits, balancing, batches -------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 60), min_size=2, max_size=4), seed=st.integers(0, 10**6))
def test_stratified_split_proportions_and_determinism(counts, seed):
    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    random.Random(seed).shuffle(labels)
    fractions = [0.7, 0.1, 0.2]
    parts = stratified_split(labels, fractions, seed)
    assert parts == stratified_split(labels, fractions, seed)
    assert sorted(i for p in parts for i in p) == list(range(len(labels)))  # a partition
    for part, fraction in zip(parts, fractions):
        per_class = Counter(labels[i] for i in part)
        for c, n in enumerate(counts):
            assert abs(per_class[c] - fraction * n) <= 1 + 1e-9


def test_stratified_split_depends_on_the_seed():
    labels = ["a"] * 50 + ["b"] * 50
    assert stratified_split(labels, [0.5, 0.5], 1) != stratified_split(labels, [0.5, 0.5], 2)
    with pytest.raises(ScratchLMError, match="sum to 1"):
        stratified_split(labels, [0.5, 0.6], 1)


def test_undersample_and_class_weights():
    labels = ["ham"] * 8 + ["spam"] * 3 + ["x"] * 5
    keep = undersample(labels, seed=3)
    assert Counter(labels[i] for i in keep) == {"ham": 3, "spam": 3, "x": 3}
    assert keep == sorted(keep) == undersample(labels, seed=3)
    assert class_weights([0] * 6 + [1] * 2, 2) == [8 / 12, 8 / 4]
    assert class_weights([0, 0], 3) == [1 / 3, 0.0, 0.0]  # 2 / (3 classes × 2)


def test_batches_cycle_through_epochs_and_resume():
    ids = [[i] * (1 + i % 3) for i in range(10)]
    batches = ClassificationBatches(ids, list(range(10)), pad_id=0, seed=7)
    assert batches.steps_per_epoch(4) == 2
    seen = [batches.get_batch(4)[1].tolist() for _ in range(2)]
    assert len({i for batch in seen for i in batch}) == 8  # one epoch: 8 distinct rows, the last 2 dropped
    state = batches.state_dict()
    after = [batches.get_batch(4)[1].tolist() for _ in range(3)]
    again = ClassificationBatches(ids, list(range(10)), pad_id=0, seed=7)
    again.load_state_dict(state)
    assert [again.get_batch(4)[1].tolist() for _ in range(3)] == after


# ---- reading tables -------------------------------------------------------------------------------------
def test_read_formats(tmp_path):
    (tmp_path / "a.tsv").write_text('ham\t"quoted" text\r\nspam\twin now\n\n', encoding="utf-8")
    assert read_labeled(tmp_path / "a.tsv", "1", "0") == (['"quoted" text', "win now"], ["ham", "spam"])
    (tmp_path / "b.csv").write_text('\ufeffid,label,text\n1,pos,"good, very\ngood"\n2,neg,bad\n')
    assert read_labeled(tmp_path / "b.csv", "text", "label") == (["good, very\ngood", "bad"], ["pos", "neg"])
    (tmp_path / "c.jsonl").write_text('{"text": "x y", "label": 1}\n\n{"text": "z", "label": 0}\n')
    assert read_labeled(tmp_path / "c.jsonl", "text", "label") == (["x y", "z"], ["1", "0"])
    (tmp_path / "d.json").write_text(json.dumps([{"t": "hello", "y": "a"}]))
    assert read_labeled(tmp_path / "d.json", "t", "y") == (["hello"], ["a"])
    (tmp_path / "e.txt").write_text("one\n\ntwo\n")
    assert read_rows(tmp_path / "e.txt", ["text"]) == [("one",), ("two",)]


@pytest.mark.parametrize(
    ("name", "content", "fields", "message"),
    [
        ("empty.tsv", "\n\n", ("1", "0"), "no rows"),
        ("x.tsv", "ham\thello\n", ("text", "label"), "no column 'text' in the header"),
        ("x.tsv", "ham\thello\nspam\n", ("1", "0"), "line 2 has 1 column"),
        ("x.jsonl", '{"text": "a"}\n', ("text", "label"), "line 1: no field 'label'"),
        ("x.jsonl", '{"text": "a", "label": 1}\n{oops\n', ("text", "label"), "line 2: not valid JSON"),
        ("x.jsonl", '{"text": "", "label": 1}\n', ("text", "label"), "row 1: the text is empty"),
        ("x.xlsx", "whatever", ("text", "label"), "unknown table format"),
        ("x.txt", "hello\n", ("text", "label"), "no labels"),
        ("missing.tsv", None, ("1", "0"), "no such file"),
    ],
)
def test_read_errors(tmp_path, name, content, fields, message):
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ScratchLMError, match=message):
        read_labeled(tmp_path / name, *fields)


# ---- metrics ----------------------------------------------------------------------------------------------
def test_metrics_match_hand_computed_values():
    targets = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    predictions = [0, 0, 1, 2, 1, 0, 2, 2, 2, 1]
    cm = confusion_matrix(targets, predictions, 3)
    assert cm == [[2, 1, 1], [1, 1, 0], [0, 1, 3]]
    report = classification_report(cm, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(6 / 10)
    a, b, c = (report["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 4), 4)
    assert a["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert (b["precision"], b["recall"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    assert (c["precision"], c["recall"]) == (pytest.approx(3 / 4), pytest.approx(3 / 4))
    assert report["macro"]["f1"] == pytest.approx((a["f1"] + b["f1"] + c["f1"]) / 3)
    never_predicted = classification_report(confusion_matrix([0, 1], [0, 0], 2), ["x", "y"])
    assert never_predicted["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    text = format_report(report)
    assert "accuracy 60.00% (6 of 10)" in text and "confusion matrix" in text


# ---- freeze policies --------------------------------------------------------------------------------------
def test_trainable_prefixes():
    assert trainable_prefixes("head", 4) == ("out_head.",)
    assert trainable_prefixes("last-1", 4) == ("trf_blocks.3.", "final_norm.", "out_head.")
    assert trainable_prefixes("all", 4) == ("",)
    with pytest.raises(ScratchLMError, match="only 4 blocks"):
        trainable_prefixes("last-5", 4)
    with pytest.raises(ScratchLMError, match="head, last-N"):
        trainable_prefixes("last-0", 4)


@pytest.mark.parametrize("policy", ["head", "last-1", "all", "lora"])
def test_freeze_policies_train_only_what_they_say(policy):
    model = tiny_gpt(vocab_size=100)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = prepare_classifier(model, 3, policy, LoRAConfig(rank=2, alpha=4), seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"out_head.weight", "out_head.bias"} <= trainable
    assert report["trainable"] == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    cfg = TrainConfig(max_steps=3, batch_size=4, lr=1e-2, warmup_steps=0, decay="constant")
    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randint(0, 100, (4, 6), generator=g),
        torch.tensor([0, 1, 2, 0]),
        torch.tensor([5, 3, 0, 2]),
    )

    class Same:
        def get_batch(self, _):
            return batch

    train(model, Same(), classification_loss, build_optimizer(model, cfg), cfg)
    after = {k.replace(".base.", "."): v for k, v in model.state_dict().items() if "lora_" not in k}
    changed = {k for k in before if not k.startswith("out_head.") and not torch.equal(before[k], after[k])}
    if policy == "all":
        assert "emb.tok_emb.weight" in changed and "trf_blocks.0.att.qkv.weight" in changed
    elif policy == "last-1":
        assert all(k.startswith(("trf_blocks.1.", "final_norm.")) for k in changed)
        assert "trf_blocks.1.att.qkv.weight" in changed
    else:  # head (and LoRA): every pretrained weight stays as it was
        assert not changed
    if policy == "lora":
        assert any(n.endswith("lora_A") for n in trainable) and report["share"] < 0.5


def test_lora_on_the_class_head_is_refused(tmp_path, base_dir):
    data = write_tsv(tmp_path / "kw.tsv", keyword_rows(10))
    head = {"rank": 2, "targets": ["qkv", "head"]}
    with pytest.raises(ScratchLMError, match="leave 'head' out"):
        finetune_classifier(classify_config(base_dir, data, lora=head), tmp_path / "a")
    with pytest.raises(ScratchLMError, match=r"need classify\.train_layers 'lora'"):
        finetune_classifier(classify_config(base_dir, data, train_layers="all", lora={}), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any file


# ---- end to end -------------------------------------------------------------------------------------------
FAST = dict(train_layers="all", lr=5e-3, batch_size=16, epochs=8, decay="cosine", device="cpu")
TRAIN_KEYS = {"lr", "batch_size", "decay", "device", "warmup_steps", "seed"}


def classify_config(base_dir, data, lora: dict | None = None, **settings) -> RunConfig:
    """The run config of a classifier of `data` from `base_dir` (the book's preset, these settings over
    it; the table's columns are label then text)."""
    train = {key: settings.pop(key) for key in list(settings) if key in TRAIN_KEYS}
    sections = {
        "train": {"init": base_dir, **train},
        "classify": {"data": data, "text_field": "1", "label_field": "0", **settings},
    }
    if lora is not None:
        sections["lora"] = lora
    return compose("classify", sections)


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory, base_dir):
    tmp = tmp_path_factory.mktemp("keyword")
    data = write_tsv(tmp / "kw.tsv", keyword_rows(80))
    outcome = finetune_classifier(classify_config(base_dir, data, **FAST), tmp / "run", show_progress=False)
    return tmp / "run", outcome.result


def test_tiny_gpt_learns_a_keyword_task(keyword_run):
    out, result = keyword_run
    assert result["labels"] == ["food", "sports", "tech"]
    assert result["test"]["accuracy"] >= 0.9, format_report(result["test"])
    assert result["examples"]["test"] == {"food": 16, "sports": 16, "tech": 16}  # 20% of 80 per class
    for name in ("metrics.jsonl", "eval.json", "confusion.png", "curves.png", "labels.json", "config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "labels.json").read_text())["label2id"] == {"food": 0, "sports": 1, "tech": 2}
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum("val_accuracy" in r for r in evals) == FAST["epochs"]  # once per epoch


def test_saved_classifier_loads_back_and_predicts(keyword_run):
    out, _ = keyword_run
    clf = Classifier.from_dir(out, device="cpu")  # the run directory holds model/
    assert clf.labels == ["food", "sports", "tech"]
    predictions = clf.predict(["my computer is new", "pizza night", "the football day"])
    assert [p.label for p in predictions] == ["tech", "food", "sports"]
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in predictions)
    model, _, config = load_classifier(out / "model")
    assert config["labels"] == clf.labels and model.out_head.bias is not None
    with pytest.raises(ScratchLMError, match="a classifier, not a language model"):
        load_model(out)
    with pytest.raises(ScratchLMError, match="encodes to no tokens"):
        clf.predict(["fine", ""])


def test_lora_run_saves_a_merged_model_and_a_reloadable_adapter(tmp_path, base_dir):
    data = write_tsv(tmp_path / "kw.tsv", keyword_rows(12))
    lora = {"rank": 2, "alpha": 4, "targets": ["qkv", "ff_in"]}
    cfg = classify_config(
        base_dir, data, lora, **{**FAST, "epochs": 2, "train_layers": "lora"}, balance="weights"
    )
    result = finetune_classifier(cfg, tmp_path / "run", show_progress=False).result
    assert 0 < result["parameters"]["share"] < 0.5
    adapter = tmp_path / "run" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    # base + PEFT adapter + head == the merged classifier
    rebuilt, _ = load_model(base_dir)
    add_classifier_head(rebuilt, 3)
    load_peft_adapter(rebuilt, adapter)
    head = load_file(str(adapter / "classifier_head.safetensors"))
    rebuilt.out_head.load_state_dict({k.removeprefix("out_head."): v for k, v in head.items()})
    merged, _, _ = load_classifier(tmp_path / "run")
    x = torch.randint(0, merged.cfg.vocab_size, (2, 9))
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(x), merged(x), atol=1e-5)


def test_undersampling_balances_only_the_training_split(tmp_path, base_dir):
    tech = [r for r in keyword_rows(30) if r[0] == "tech"]
    rows = [r for r in keyword_rows(30) if r[0] != "tech"] + tech[:12]
    data = write_tsv(tmp_path / "kw.tsv", rows)
    cfg = classify_config(base_dir, data, balance="undersample", train_layers="head", epochs=1, device="cpu")
    result = finetune_classifier(cfg, tmp_path / "run", show_progress=False).result
    assert len(set(result["examples"]["train"].values())) == 1
    assert result["examples"]["test"]["tech"] < result["examples"]["test"]["food"]


@pytest.mark.parametrize(
    ("rows", "changes", "message"),
    [
        ([("ham", "a b")] * 20, {}, "only one class"),
        (None, {"label_field": "label"}, "no column 'label'"),
        (None, {"max_length": 99}, "longer than the model's context length 32"),
        (None, {"labels": ["food", "sports"]}, "not among the classes"),
        ([("a", "x y"), ("b", "y z")], {}, "split of .* is empty"),
        (None, {"train_layers": "last-3"}, "only 2 blocks"),
    ],
)
def test_clear_errors(tmp_path, base_dir, rows, changes, message):
    data = write_tsv(tmp_path / "d.tsv", rows or keyword_rows(10))
    with pytest.raises(ScratchLMError, match=message):
        finetune_classifier(classify_config(base_dir, data, device="cpu", **changes), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # a refused run leaves no directory behind
