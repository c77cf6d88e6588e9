"""The whole pipeline in one call, on data every machine with Python has (`scratchlm demo`).

Stages, each writing under `out/` and reusing what an earlier run left there:

1. `tokenize`: a byte-level BPE trained on the interpreter's language reference and the standard library's
   docstrings (`scratchlm.data.stdlib`), a tokenized sample shown.
2. `pretrain`: a small GPT pretrained on that text for its share of the time budget (the step time is
   measured first, so the cosine schedule fits the budget), samples shown as they improved.
3. `classify`: the pretrained GPT fine-tuned to tell which area of the standard library a docstring comes
   from, tested on modules it never saw; accuracy and the confusion matrix.
4. `instruct`: LoRA instruction tuning on "What does `json.dumps` do?" → the docstring's first sentence,
   tested on held-out functions: response perplexity before and after, ROUGE-L, exact match.
5. `chat`: a short chat with the result in a terminal (else a few held-out questions answered), and the
   command that serves it.

`minutes` scales every stage; the shares are in SHARES.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.files import sha256_file
from scratchlm.report import write_report_safely

STAGES = ("tokenize", "pretrain", "classify", "instruct", "chat")
SHARES = {"pretrain": 0.5, "classify": 0.2, "instruct": 0.25}  # of the budget; the rest is fixed overhead
# A fine-tuning step at batch 16 costs this much of a pretraining step (measured on 2 cores: 0.67 for the
# classifier, whose docstrings are padded only to the batch's longest, and 0.67 for LoRA on short answers).
STEP_COST = {"classify": 0.75, "instruct": 0.75}


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    minutes: float = 10.0
    stages: tuple[str, ...] = STAGES
    vocab_size: int = 4096
    seed: int = 123
    interactive: bool = False  # chat in the terminal at the end (else print answers)
    show_progress: bool = True
    fresh: bool = False  # delete earlier outputs of the chosen stages first
    max_examples: int | None = None  # per split, for classify and instruct (a quick smoke run)
    dataset: str | None = None  # pretrain on this text dataset of the registry instead (scratchlm data list)
    with_source: float | None = None  # also pretrain on this many MB of the standard library's source code
    data_dir: str | None = None  # where to look for it before the cache and the network
    say: Callable[[str], None] = field(default=print)


def run_demo(cfg: DemoConfig) -> dict:
    """Run the chosen stages; return what each reported (also written to out/demo.json)."""
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise ScratchLMError(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    if cfg.minutes <= 0:
        raise ScratchLMError(f"--minutes must be positive, got {cfg.minutes}")
    if cfg.with_source is not None and (not 0 < cfg.with_source < math.inf or cfg.dataset):
        raise ScratchLMError("--with-source takes a positive number of MB, and not with --dataset")
    cfg.out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for stage in STAGES:
        if stage not in cfg.stages:
            continue
        started = time.perf_counter()
        cfg.say(f"\n== {STAGES.index(stage) + 1}. {stage}")
        results[stage] = {**globals()[f"_{stage}"](cfg), "seconds": round(time.perf_counter() - started, 1)}
    summary = cfg.out / "demo.json"
    previous = json.loads(summary.read_text()) if summary.is_file() else {}
    everything = {**previous, **results}
    summary.write_text(json.dumps(everything, indent=1, default=str))
    _write_report(cfg, everything)
    return results


def _write_report(cfg: DemoConfig, results: dict) -> None:
    """report.md + report.html for the whole demo: each stage's result, its key pictures, its own report."""
    from scratchlm.files import write_atomic
    from scratchlm.report import Code, Image, Table, config_table, render_html, render_markdown

    nan = float("nan")
    rows = []
    for stage in STAGES:
        r = results.get(stage)
        if r is None:
            continue
        if stage == "pretrain":
            headline = (
                f"val {r.get('val_loss') or nan:.3f} nats/token, {r.get('val_bpb') or nan:.3f} bits/byte"
            )
        elif stage == "classify":
            headline = f"test accuracy {r['test_accuracy']:.1%} on unseen modules, {len(r['labels'])} areas"
        elif stage == "instruct":
            headline = "; ".join(
                f"{name} {_before_after(r.get(key) or {}, spec).replace('->', '→')}"
                for key, name, spec in INSTRUCT_SCORES[:3]
            )
        elif stage == "tokenize":
            headline = f"{r['vocab_size']:,} tokens"
        else:
            headline = f"{len(r.get('answers', []))} held-out questions answered"
        rows.append([stage, headline, f"{r.get('seconds', 0):.0f}"])
    rows.append(["all", "", f"{sum(r.get('seconds', 0) for r in results.values()):.0f}"])
    sections = [
        ("Stages", [Table(["stage", "result", "seconds"], rows), Code(_command(cfg))]),
    ]
    pictures = [("pretrain/loss.png", "pretraining loss"), ("classify/confusion.png", "classifier, test set")]
    images = [Image(f, c) for f, c in pictures if (cfg.out / f).is_file()]
    if images:
        sections.append(("Curves", images))
    if "classify" in results:
        r = results["classify"]
        confusion = [[label, *map(str, row)] for label, row in zip(r["labels"], r["confusion"])]
        sections.append(
            ("Classification: confusion matrix", [Table(["true \\ predicted", *r["labels"]], confusion)])
        )
    if "instruct" in results:
        r = results["instruct"]
        rows = [
            [name, *_before_after(r.get(key) or {}, spec).split(" -> ")]
            for key, name, spec in INSTRUCT_SCORES
        ]
        sections.append(("Instruction tuning: held-out questions", [Table(["", "before", "after"], rows)]))
    answers = results.get("chat", {}).get("answers") or []
    if answers:
        table = Table(
            ["question", "model", "docstring"],
            [[a["question"], a["answer"], a["reference"]] for a in answers],
            True,
        )
        sections.append(("Held-out questions", [table]))
    reports = [
        f"{stage}/report.html"
        for stage in ("pretrain", "classify", "instruct")
        if (cfg.out / stage / "report.html").is_file()
    ]
    if reports:
        sections.append(("Each stage's own report", ["; ".join(reports)]))
    sections.append(("Data", [Table(["", "value"], _data_rows(cfg))]))
    settings = {
        "demo": {
            k: v for k, v in vars(cfg).items() if k not in ("say", "out", "interactive", "show_progress")
        },
        "budget shares": SHARES,
        "model": MODEL,
        "pretrain": PRETRAIN,
    }
    note = "Of the last `scratchlm demo` call; each stage's own report has the command that made that stage."
    sections.append(("Settings", [note, config_table(settings)]))
    title = "scratchlm demo"
    write_atomic(cfg.out / "report.md", render_markdown(title, sections))
    write_atomic(cfg.out / "report.html", render_html(title, sections, cfg.out))


def _data_rows(cfg: DemoConfig) -> list[list[str]]:
    """What the demo read: the Python whose library it is, the pretraining text with its SHA-256, the
    tokenizer's fingerprint, the fine-tuning tables."""
    import platform

    from scratchlm.report import tokenizer_rows

    rows = [["Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.prefix})"]]
    config = cfg.out / "pretrain" / "config.json"
    inputs = json.loads(config.read_text())["data"]["inputs"] if config.is_file() else []
    for name in inputs:
        path = Path(name)
        if path.is_file():
            digest = sha256_file(path)[:16]
            rows.append(["pretraining text", f"{path}: {path.stat().st_size:,} bytes, SHA-256 {digest}…"])
    rows += tokenizer_rows(cfg.out)
    for split in ("train", "val", "test"):
        table = cfg.out / "data" / f"areas-{split}.tsv"
        if table.is_file():
            lines = table.read_text(encoding="utf-8").splitlines()
            rows.append([f"docstrings by area, {split}", f"{table}: {len(lines):,} rows"])
    instruct = cfg.out / "instruct" / "eval.json"
    if instruct.is_file():
        counts = dict(json.loads(instruct.read_text()).get("examples", {}))
        dropped = counts.pop("dropped_too_long", 0)
        text = ", ".join(f"{split} {n:,}" for split, n in counts.items())
        rows.append(["questions", text + (f" ({dropped:,} too long, left out)" if dropped else "")])
    return rows


def _need(path: Path, stage: str) -> Path:
    if not path.exists():
        raise ScratchLMError(
            f"{path} is missing: run `scratchlm demo --stage {stage}` first (or the whole demo)"
        )
    return path


def _fresh(cfg: DemoConfig, path: Path) -> bool:
    """True when `path` holds an earlier output to reuse (removed first with --fresh)."""
    if cfg.fresh and path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if path.exists():
        cfg.say(f"reusing {path} (--fresh starts it over)")
        return True
    return False


def _tokenizer_name(corpus: Path) -> str:
    """The demo's BPE names the text it learned from, so a later stage can check it reuses the right one."""
    return f"demo-{corpus.stem}"


def _same_file(a: Path, b: Path) -> bool:
    """The same file, or files with the same bytes (a dataset found once in --data-dir, once in the cache)."""
    if a.resolve() == b.resolve():
        return True
    if not (a.is_file() and b.is_file()) or a.stat().st_size != b.stat().st_size:
        return False
    return sha256_file(a) == sha256_file(b)


def _mismatch(cfg: DemoConfig, found: str, wanted: str) -> None:
    raise ScratchLMError(
        f"{cfg.out} holds {found}, not {wanted} as asked: add --fresh to redo it, or choose another --out"
    )


def _finished(cfg: DemoConfig, run: Path) -> dict | None:
    """The eval.json of a fine-tune that already ran (to reuse), else None; `run` is cleared."""
    if _fresh(cfg, run / "eval.json"):
        return json.loads((run / "eval.json").read_text())
    shutil.rmtree(run, ignore_errors=True)
    return None


def _command(cfg: DemoConfig, stage: str | None = None) -> str:
    """How to redo this demo, or one stage of it (each stage's run report shows it)."""
    words = ["scratchlm demo", *([f"--stage {stage}"] if stage else []), "--fresh", f"--out {cfg.out}"]
    words.append(f"--minutes {cfg.minutes:g}")
    if cfg.vocab_size != DemoConfig.vocab_size:
        words.append(f"--vocab-size {cfg.vocab_size}")
    if cfg.with_source is not None:
        words.append(f"--with-source {cfg.with_source:g}")
    if cfg.dataset:
        words.append(f"--dataset {cfg.dataset}" + (f" --data-dir {cfg.data_dir}" if cfg.data_dir else ""))
    return " ".join(words)


def _sample(rows: list, n: int | None) -> list:
    """Every k-th row, n in all (the whole list when n is None): a spread, not the first module's rows."""
    if n is None or len(rows) <= n:
        return rows
    return rows[:: len(rows) // n][:n]


# ---- 1. tokenize ----------------------------------------------------------------------------------------


TEXT_DATASETS = ("tinyshakespeare", "the-verdict", "tinystories")


VAL_SHARE = 0.05  # of the documentation (or of a named dataset): the held-out tail for validation


def _documentation() -> str:
    """The language reference, then every docstring headed by its qualified name."""
    from scratchlm.data.stdlib import docstrings, reference_text

    docs = (f"{d.module}.{d.name}\n{d.text}" if d.name else f"{d.module}\n{d.text}" for d in docstrings())
    return reference_text() + "\n\n" + "\n\n".join(docs) + "\n"


def _corpus(cfg: DemoConfig) -> Path:
    from scratchlm.data.stdlib import source_text

    if cfg.dataset is not None:
        from scratchlm.data.registry import get

        if cfg.dataset not in TEXT_DATASETS:
            raise ScratchLMError(
                f"--dataset {cfg.dataset}: pretraining takes a text dataset: {', '.join(TEXT_DATASETS)}"
            )
        return get(cfg.dataset, cfg.data_dir, show_progress=cfg.show_progress)
    name = "pretrain.txt" if cfg.with_source is None else f"pretrain+source-{cfg.with_source:g}MB.txt"
    path = cfg.out / "data" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        code = "" if cfg.with_source is None else source_text(cfg.with_source) + "\n\n"
        # the code first: the held-out tail (validation) is the same documentation with or without it
        path.write_text(code + _documentation(), encoding="utf-8")
    return path


def _val_fraction(cfg: DemoConfig, tokenizer, text: str) -> float:
    """The share of `text`'s tokens that is its held-out tail: the last VAL_SHARE of the documentation's
    characters, so a run with --with-source is validated on the very text a run without it is."""
    if cfg.dataset is not None:
        return VAL_SHARE
    tail = text[-int(VAL_SHARE * len(_documentation())) :]
    return len(tokenizer.encode_ordinary(tail)) / len(tokenizer.encode_ordinary(text))


def _tokenize(cfg: DemoConfig) -> dict:
    from scratchlm.formats.tokenizer_files import load_tokenizer, save_tokenizer
    from scratchlm.tokenizer import train_bpe

    corpus = _corpus(cfg)
    directory = cfg.out / "tokenizer"
    name = _tokenizer_name(corpus)
    if _fresh(cfg, directory):
        tok = load_tokenizer(directory)
        if (tok.name, tok.vocab_size) != (name, cfg.vocab_size):
            _mismatch(
                cfg,
                f"a {tok.vocab_size:,}-token BPE named {tok.name}",
                f"{cfg.vocab_size:,} on {corpus.name}",
            )
    else:
        text = corpus.read_text(encoding="utf-8")
        source = cfg.dataset or "Python's language reference + the stdlib's docstrings" + (
            " + its source code" if cfg.with_source is not None else ""
        )
        cfg.say(f"corpus: {source}, {len(text) / 1e6:.1f} MB")
        tok = train_bpe([text], cfg.vocab_size, pattern="gpt4", name=name)
        save_tokenizer(tok, directory)
    sample = "json.dumps(obj) serializes obj to a JSON formatted str."
    ids = tok.encode_ordinary(sample)
    cfg.say(f"{tok.vocab_size:,} tokens; {sample!r} -> {len(ids)} tokens:")
    cfg.say("  " + " | ".join(tok.decode([i]) for i in ids))
    return {"vocab_size": tok.vocab_size, "sample_tokens": len(ids), "sample_bytes": len(sample.encode())}


# ---- 2. pretrain ----------------------------------------------------------------------------------------

MODEL = dict(context_length=128, emb_dim=192, n_heads=6, n_layers=4, dropout=0.0)
PRETRAIN = dict(batch_size=16, lr=2e-3, min_lr=1e-4, warmup_steps=30, beta2=0.99, weight_decay=0.1)


def _pretrain(cfg: DemoConfig) -> dict:
    import numpy as np

    from scratchlm.config import ModelConfig, RunConfig, TrainConfig
    from scratchlm.formats.tokenizer_files import load_tokenizer
    from scratchlm.train.perf import step_seconds
    from scratchlm.train.pretrain import pretrain
    from scratchlm.train.runlog import read_metrics

    run = cfg.out / "pretrain"
    tokenizer_dir = _need(cfg.out / "tokenizer", "tokenize")
    corpus = _corpus(cfg)
    if run.exists() and not (run / "checkpoints" / "latest.json").is_file():
        shutil.rmtree(run)  # an interrupted start without a checkpoint: begin again
    if _fresh(cfg, run):
        inputs = json.loads((run / "config.json").read_text())["data"]["inputs"]
        if len(inputs) != 1 or not _same_file(Path(inputs[0]), corpus):
            _mismatch(cfg, f"a model pretrained on {', '.join(inputs)}", str(corpus))
    else:
        tok = load_tokenizer(tokenizer_dir)
        if tok.name != _tokenizer_name(corpus):
            _mismatch(cfg, f"a BPE named {tok.name}", f"one learned from {corpus.name} (--stage tokenize)")
        model_cfg = ModelConfig(vocab_size=tok.vocab_size, **MODEL)
        text = corpus.read_text(encoding="utf-8")
        probe_ids = np.array(tok.encode_ordinary(text[:200_000]), dtype=np.int64)
        budget = cfg.minutes * 60 * SHARES["pretrain"]
        step_s = step_seconds(
            model_cfg, TrainConfig(**PRETRAIN), probe_ids, cfg.seed, seconds=min(5.0, budget / 10)
        )
        steps = max(PRETRAIN["warmup_steps"] + 5, int(budget * 0.85 / step_s))  # 15% for evals and samples
        cfg.say(f"{step_s * 1000:.0f} ms per step here: {steps} steps fit in {budget / 60:.1f} min")
        val_fraction = _val_fraction(cfg, tok, text)
        cfg.say(f"held out for validation: the last {val_fraction:.1%} of the tokens")
        settings = {
            "model": MODEL | {"vocab_size": tok.vocab_size},
            "data": {
                "inputs": [str(corpus)],
                "tokenizer": str(tokenizer_dir),
                "val_fraction": val_fraction,
            },
            "train": PRETRAIN
            | {
                "max_steps": steps,
                "eval_interval": max(1, steps // 5),
                "eval_batches": 10,
                "checkpoint_interval": max(1, steps // 2),
                "log_interval": max(1, steps // 50),
                "sample_prompt": "The json module",
                "sample_tokens": 24,
                "seed": cfg.seed,
                "device": "cpu",
            },
        }
        pretrain(RunConfig.from_dict(settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, _command(cfg, "pretrain"))
    records = read_metrics(run)
    evals = [r for r in records if "val_loss" in r]
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines() if line.strip()]
    cfg.say("samples of 'The json module' as training went on:")
    for s in samples:
        cfg.say(f"  step {s['step']:>5}: {' '.join(s['text'].split())[:90]!r}")
    last = evals[-1] if evals else {}
    nan = float("nan")
    cfg.say(f"val loss {last.get('val_loss', nan):.3f} nats/token, {last.get('val_bpb', nan):.3f} bits/byte")
    return {"steps": last.get("step"), "val_loss": last.get("val_loss"), "val_bpb": last.get("val_bpb")}


# ---- 3. classify ----------------------------------------------------------------------------------------


def _classify(cfg: DemoConfig) -> dict:
    from scratchlm.config import compose
    from scratchlm.data.stdlib import AREAS, area_examples
    from scratchlm.finetune.classify import finetune_classifier

    base = _need(cfg.out / "pretrain", "pretrain")
    run = cfg.out / "classify"
    result = _finished(cfg, run)
    if result is None:
        files = {}
        for split, rows in area_examples().items():
            if cfg.max_examples is not None:  # the same share of every area, each area kept
                by_area = {area: [r for r in rows if r[1] == area] for area in sorted(AREAS)}
                rows = [
                    r for group in by_area.values() for r in _sample(group, max(1, cfg.max_examples // 6))
                ]
            files[split] = cfg.out / "data" / f"areas-{split}.tsv"
            lines = (f"{label}\t{' '.join(text.split())}" for text, label in rows)
            files[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
        n_train = len(files["train"].read_text().splitlines())
        budget = cfg.minutes * 60 * SHARES["classify"]
        steps_per_epoch = max(1, n_train // 16)
        epoch_s = steps_per_epoch * _step_estimate(cfg) * STEP_COST["classify"]
        epochs = int(min(12, max(1, budget * 0.85 // epoch_s)))  # the rest: evaluations and the test
        cfg.say(f"docstrings by area: {n_train} train; {epochs} epochs fit in {budget / 60:.1f} min")
        settings = {
            "classify": {
                "data": str(files["train"]),
                "val": str(files["val"]),
                "test": str(files["test"]),
                "text_field": "1",
                "label_field": "0",
                "labels": sorted(AREAS),
                "train_layers": "all",
                "epochs": epochs,
                "max_length": MODEL["context_length"],
            },
            "train": {"init": str(base), "batch_size": 16, "lr": 5e-4, "warmup_steps": 20, "decay": "cosine"}
            | {"seed": cfg.seed, "device": "cpu"},
        }
        outcome = finetune_classifier(compose("classify", settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, _command(cfg, "classify"))
        result = outcome.result
    test = result["test"]
    labels = result["labels"]
    chance = 1 / len(labels)
    cfg.say(f"test accuracy {test['accuracy']:.1%} on modules never seen in training (chance {chance:.0%})")
    width = max(len(x) for x in labels) + 2
    cfg.say(" " * width + "".join(f"{x[:10]:>11}" for x in labels) + "   <- predicted")
    for label, row in zip(labels, test["confusion"]):
        cfg.say(f"{label:<{width}}" + "".join(f"{n:>11}" for n in row))
    return {"test_accuracy": test["accuracy"], "labels": labels, "confusion": test["confusion"]}


def _step_estimate(cfg: DemoConfig) -> float:
    """Seconds per step of the demo's model at batch 16, from the pretraining run's own log."""
    from scratchlm.train.runlog import read_metrics

    rates = [r["tokens_per_s"] for r in read_metrics(cfg.out / "pretrain") if r.get("tokens_per_s")]
    if not rates:
        return 0.1
    rates.sort()
    return 16 * MODEL["context_length"] / rates[len(rates) // 2]


# ---- 4. instruct ----------------------------------------------------------------------------------------


def _instruct(cfg: DemoConfig) -> dict:
    from scratchlm.config import compose
    from scratchlm.data.stdlib import qa_pairs
    from scratchlm.files import write_json
    from scratchlm.finetune.instruct import finetune_instruct

    base = _need(cfg.out / "pretrain", "pretrain")
    run = cfg.out / "instruct"
    result = _finished(cfg, run)
    if result is None:
        qa = qa_pairs()
        files = {}
        for split in ("train", "val", "test"):
            files[split] = cfg.out / "data" / f"questions-{split}.json"
            write_json(files[split], qa[split][: cfg.max_examples])
        counts = {split: len(qa[split][: cfg.max_examples]) for split in files}
        budget = cfg.minutes * 60 * SHARES["instruct"]
        step_s = _step_estimate(cfg) * STEP_COST["instruct"]
        steps = max(10, int(budget * 0.8 / step_s))  # the rest: evaluations and answering the test questions
        cfg.say(f"{counts['train']} questions to learn from, {counts['test']} held out; {steps} LoRA steps")
        settings = {
            "instruct": {
                "data": str(files["train"]),
                "val": str(files["val"]),
                "test": str(files["test"]),
                "split_seed": None,  # the train file as it is: the split is the data's own
                "template": "alpaca",
                "mask_prompt": True,
                "max_test": min(40, cfg.max_examples or 40),
                "baseline": True,  # the pretrained model answers the same questions first: before/after
                "max_length": MODEL["context_length"],
            },
            "generate": {"max_new_tokens": 32},
            "lora": {"rank": 16, "alpha": 32, "targets": ["qkv", "out_proj", "ff_in", "ff_out"]},
            # betas (0.9, 0.95) and validation every 100 steps: this demo's recipe since it was measured
            "train": {"init": str(base), "max_steps": steps, "lr": 2e-3, "batch_size": 16, "beta2": 0.95}
            | {"eval_interval": 100, "log_interval": 10, "seed": cfg.seed, "device": "cpu"},
        }
        outcome = finetune_instruct(compose("instruct", settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, _command(cfg, "instruct"))
        result = outcome.result
    scores = {"response_ppl": result.get("test_response_ppl", {})}
    for key in ("rouge_l", "first_clause_match", "exact_match"):
        scores[key] = {"before": (result.get("before") or {}).get(key), "after": result.get(key)}
    cfg.say(f"{result.get('responses', 0)} held-out questions, before -> after instruction tuning:")
    for key, name, spec in INSTRUCT_SCORES:
        cfg.say(f"  {name:<22} {_before_after(scores[key], spec)}")
    return scores


INSTRUCT_SCORES = (
    ("response_ppl", "answer perplexity", ".1f"),
    ("rouge_l", "ROUGE-L", ".3f"),
    ("first_clause_match", "first-clause match", ".1%"),
    ("exact_match", "exact match", ".1%"),
)


def _before_after(pair, spec: str) -> str:
    """ "before -> after"; a bare number (a demo.json from before scores had a before) is an after."""
    if not isinstance(pair, dict):
        pair = {"after": pair}

    def show(x):
        return "n/a" if x is None else format(x, spec)

    return f"{show(pair.get('before'))} -> {show(pair.get('after'))}"


# ---- 5. chat --------------------------------------------------------------------------------------------


def _chat(cfg: DemoConfig) -> dict:
    from scratchlm.config import GenerateConfig
    from scratchlm.data.stdlib import qa_pairs
    from scratchlm.data.templates import load_template
    from scratchlm.formats.model_files import load_model
    from scratchlm.serve.chat import ChatSession

    model_dir = _need(cfg.out / "instruct" / "model", "instruct")
    model, tokenizer = load_model(model_dir)
    config = GenerateConfig(max_new_tokens=40, temperature=0.0, repetition_penalty=1.2)  # no "a a a a"
    session = ChatSession(model, tokenizer, load_template(model_dir), config)
    answers = []
    try:
        if cfg.interactive:
            cfg.say("ask about the standard library (an empty line ends the chat):")
            while question := input("> ").strip():
                sys.stdout.write("".join(e.text for e in session.reply(question)) + "\n")
        else:
            for pair in qa_pairs()["test"][:3]:
                reply = "".join(e.text for e in session.reply(pair["instruction"]))
                session.command("/reset")
                answers.append(
                    {"question": pair["instruction"], "reference": pair["output"], "answer": reply}
                )
                cfg.say(f"Q: {pair['instruction']}\n   model:     {reply.strip()!r}")
                cfg.say(f"   docstring: {pair['output']!r}")
    finally:
        session.close()
    cfg.say(f"\nserve it: scratchlm serve --model {model_dir}   (OpenAI API at /v1, a chat page at /)")
    return {"answers": answers}
