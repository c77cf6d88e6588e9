"""The demo's five stages, each a function from the DemoConfig to its result (what demo.json keeps), and
the table that orders them (`STAGES`: name, function, the stages whose outputs it reads, the directory it
leaves, its result in one line). Each stage writes under `out/` and reuses what an earlier run left there,
unless `--fresh`; a reused output made from other settings is refused, never mixed in."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from scratchlm.demo import corpus as text
from scratchlm.demo.config import (
    CLASSIFY,
    INSTRUCT,
    INSTRUCT_ANSWER_TOKENS,
    LORA,
    MAX_TEST_QUESTIONS,
    MODEL,
    PRETRAIN,
    SAMPLE_PROMPT,
    SHARES,
    STEP_COST,
    DemoConfig,
    redo_command,
)
from scratchlm.errors import ScratchLMError
from scratchlm.files import sha256_file
from scratchlm.report import write_report_safely
from scratchlm.results import RESULT_FILE, read_result

if TYPE_CHECKING:
    from scratchlm.config import ModelConfig

# ---- what each stage returns (demo.json holds one per stage, plus its "seconds") -------------------------


class TokenizeResult(TypedDict):
    vocab_size: int
    sample_tokens: int  # of SAMPLE_TEXT
    sample_bytes: int


class PretrainResult(TypedDict):
    steps: int | None
    val_loss: float | None  # nats per token, at the last evaluation
    val_bpb: float | None  # bits per byte


class ClassifyResult(TypedDict):
    test_accuracy: float
    labels: list[str]
    confusion: list[list[int]]  # a row per true label, a column per predicted one


class BeforeAfter(TypedDict):
    before: float | None  # the pretrained model's, before instruction tuning
    after: float | None


class InstructResult(TypedDict):
    response_ppl: BeforeAfter
    rouge_l: BeforeAfter
    first_clause_match: BeforeAfter
    exact_match: BeforeAfter


class Answer(TypedDict):
    question: str
    reference: str
    answer: str


class ChatResult(TypedDict):
    answers: list[Answer]


# ---- 1. tokenize ---------------------------------------------------------------------------------------

SAMPLE_TEXT = "json.dumps(obj) serializes obj to a JSON formatted str."


def tokenize(cfg: DemoConfig) -> TokenizeResult:
    from scratchlm.formats.tokenizer_files import load_tokenizer, save_tokenizer
    from scratchlm.tokenizer import train_bpe

    corpus = text.corpus(cfg)
    directory = cfg.out / "tokenizer"
    name = text.tokenizer_name(corpus)
    if _reusing(cfg, directory):
        tok = load_tokenizer(directory)
        if (tok.name, tok.vocab_size) != (name, cfg.vocab_size):
            _mismatch(
                cfg,
                f"a {tok.vocab_size:,}-token BPE named {tok.name}",
                f"{cfg.vocab_size:,} on {corpus.name}",
            )
    else:
        content = corpus.read_text(encoding="utf-8")
        source = cfg.dataset or "Python's language reference + the stdlib's docstrings" + (
            " + its source code" if cfg.with_source is not None else ""
        )
        cfg.say(f"corpus: {source}, {len(content) / 1e6:.1f} MB")
        tok = train_bpe([content], cfg.vocab_size, pattern="gpt4", name=name)
        save_tokenizer(tok, directory)
    ids = tok.encode_ordinary(SAMPLE_TEXT)
    cfg.say(f"{tok.vocab_size:,} tokens; {SAMPLE_TEXT!r} -> {len(ids)} tokens:")
    cfg.say("  " + " | ".join(tok.decode([i]) for i in ids))
    return {
        "vocab_size": tok.vocab_size,
        "sample_tokens": len(ids),
        "sample_bytes": len(SAMPLE_TEXT.encode()),
    }


# ---- 2. pretrain ---------------------------------------------------------------------------------------


def pretrain(cfg: DemoConfig) -> PretrainResult:
    import numpy as np

    from scratchlm.config import RunConfig, TrainConfig
    from scratchlm.formats.tokenizer_files import load_tokenizer
    from scratchlm.train.perf import step_seconds
    from scratchlm.train.pretrain import pretrain as pretrain_run
    from scratchlm.train.runlog import read_metrics

    run = cfg.out / "pretrain"
    tokenizer_dir = cfg.out / "tokenizer"
    corpus = text.corpus(cfg)
    if run.exists() and not (run / "checkpoints" / "latest.json").is_file():
        shutil.rmtree(run)  # an interrupted start without a checkpoint: begin again
    if _reusing(cfg, run):
        inputs = json.loads((run / "config.json").read_text())["data"]["inputs"]
        if len(inputs) != 1 or not _same_file(Path(inputs[0]), corpus):
            _mismatch(cfg, f"a model pretrained on {', '.join(inputs)}", str(corpus))
    else:
        tok = load_tokenizer(tokenizer_dir)
        if tok.name != text.tokenizer_name(corpus):
            _mismatch(cfg, f"a BPE named {tok.name}", f"one learned from {corpus.name} (--stage tokenize)")
        model_cfg = model_config(tok.vocab_size)
        content = corpus.read_text(encoding="utf-8")
        probe_ids = np.array(tok.encode_ordinary(content[:200_000]), dtype=np.int64)
        budget = cfg.minutes * 60 * SHARES["pretrain"]
        step_s = step_seconds(
            model_cfg, TrainConfig(**PRETRAIN), probe_ids, cfg.seed, seconds=min(5.0, budget / 10)
        )
        steps = max(PRETRAIN["warmup_steps"] + 5, int(budget * 0.85 / step_s))  # 15% for evals and samples
        cfg.say(f"{step_s * 1000:.0f} ms per step here: {steps} steps fit in {budget / 60:.1f} min")
        val_fraction = text.val_fraction(cfg, tok, content)
        cfg.say(f"held out for validation: the last {val_fraction:.1%} of the tokens")
        settings = {
            "model": MODEL | {"vocab_size": tok.vocab_size},
            "data": {"inputs": [str(corpus)], "tokenizer": str(tokenizer_dir), "val_fraction": val_fraction},
            "train": PRETRAIN
            | {
                "max_steps": steps,
                "eval_interval": max(1, steps // 5),
                "eval_batches": 10,
                "checkpoint_interval": max(1, steps // 2),
                "log_interval": max(1, steps // 50),
                "sample_prompt": SAMPLE_PROMPT,
                "sample_tokens": 24,
                "seed": cfg.seed,
                "device": "cpu",
            },
        }
        pretrain_run(RunConfig.from_dict(settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, redo_command(cfg, "pretrain"))
    evals = [r for r in read_metrics(run) if "val_loss" in r]
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines() if line.strip()]
    cfg.say(f"samples of {SAMPLE_PROMPT!r} as training went on:")
    for s in samples:
        cfg.say(f"  step {s['step']:>5}: {' '.join(s['text'].split())[:90]!r}")
    last = evals[-1] if evals else {}
    nan = float("nan")
    cfg.say(f"val loss {last.get('val_loss', nan):.3f} nats/token, {last.get('val_bpb', nan):.3f} bits/byte")
    return {"steps": last.get("step"), "val_loss": last.get("val_loss"), "val_bpb": last.get("val_bpb")}


# ---- 3. classify ---------------------------------------------------------------------------------------


def classify(cfg: DemoConfig) -> ClassifyResult:
    from scratchlm.config import compose
    from scratchlm.data.stdlib import AREAS, area_examples
    from scratchlm.finetune.classify import finetune_classifier

    run = cfg.out / "classify"
    result = _finished(cfg, run, "classify")
    if result is None:
        files = {}
        for split, rows in area_examples().items():
            if cfg.max_examples is not None:  # the same share of every area, each area kept
                by_area = {area: [r for r in rows if r[1] == area] for area in sorted(AREAS)}
                rows = [
                    r for group in by_area.values() for r in _spread(group, max(1, cfg.max_examples // 6))
                ]
            files[split] = cfg.out / "data" / f"areas-{split}.tsv"
            lines = (f"{label}\t{' '.join(t.split())}" for t, label in rows)
            files[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
        n_train = len(files["train"].read_text().splitlines())
        budget = cfg.minutes * 60 * SHARES["classify"]
        steps_per_epoch = max(1, n_train // CLASSIFY["batch_size"])
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
            "train": {"init": str(cfg.out / "pretrain"), **CLASSIFY, "seed": cfg.seed, "device": "cpu"},
        }
        outcome = finetune_classifier(compose("classify", settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, redo_command(cfg, "classify"))
        result = outcome.result
    test, labels = result["test"], result["labels"]
    chance = 1 / len(labels)
    cfg.say(f"test accuracy {test['accuracy']:.1%} on modules never seen in training (chance {chance:.0%})")
    width = max(len(x) for x in labels) + 2
    cfg.say(" " * width + "".join(f"{x[:10]:>11}" for x in labels) + "   <- predicted")
    for label, row in zip(labels, test["confusion"]):
        cfg.say(f"{label:<{width}}" + "".join(f"{n:>11}" for n in row))
    return {"test_accuracy": test["accuracy"], "labels": labels, "confusion": test["confusion"]}


# ---- 4. instruct ---------------------------------------------------------------------------------------

INSTRUCT_SCORES = (  # (key, name, format) of InstructResult, in the order shown
    ("response_ppl", "answer perplexity", ".1f"),
    ("rouge_l", "ROUGE-L", ".3f"),
    ("first_clause_match", "first-clause match", ".1%"),
    ("exact_match", "exact match", ".1%"),
)


def instruct(cfg: DemoConfig) -> InstructResult:
    from scratchlm.config import compose
    from scratchlm.data.stdlib import qa_pairs
    from scratchlm.files import write_json
    from scratchlm.finetune.instruct import finetune_instruct

    run = cfg.out / "instruct"
    result = _finished(cfg, run, "instruct")
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
                "max_test": min(MAX_TEST_QUESTIONS, cfg.max_examples or MAX_TEST_QUESTIONS),
                "baseline": True,  # the pretrained model answers the same questions first: before/after
                "max_length": MODEL["context_length"],
            },
            "generate": {"max_new_tokens": INSTRUCT_ANSWER_TOKENS},
            "lora": {**LORA, "targets": list(LORA["targets"])},
            "train": {"init": str(cfg.out / "pretrain"), "max_steps": steps, **INSTRUCT}
            | {"seed": cfg.seed, "device": "cpu"},
        }
        outcome = finetune_instruct(compose("instruct", settings), run, show_progress=cfg.show_progress)
        write_report_safely(run, redo_command(cfg, "instruct"))
        result = outcome.result
    scores = {"response_ppl": result.get("test_response_ppl", {})}
    for key in ("rouge_l", "first_clause_match", "exact_match"):
        scores[key] = {"before": (result.get("before") or {}).get(key), "after": result.get(key)}
    cfg.say(f"{result.get('responses', 0)} held-out questions, before -> after instruction tuning:")
    for key, name, spec in INSTRUCT_SCORES:
        cfg.say(f"  {name:<22} {before_after(scores[key], spec)}")
    return scores


def before_after(pair, spec: str) -> str:
    """ "before -> after"; a bare number (a demo.json from before scores had a before) is an after."""
    if not isinstance(pair, dict):
        pair = {"after": pair}

    def show(x):
        return "n/a" if x is None else format(x, spec)

    return f"{show(pair.get('before'))} -> {show(pair.get('after'))}"


# ---- 5. chat -------------------------------------------------------------------------------------------


def chat(cfg: DemoConfig) -> ChatResult:
    from scratchlm.config import GenerateConfig
    from scratchlm.data.stdlib import qa_pairs
    from scratchlm.data.templates import load_template
    from scratchlm.formats.model_files import load_model
    from scratchlm.serve.chat import ChatSession

    model_dir = cfg.out / "instruct" / "model"
    model, tokenizer = load_model(model_dir)
    config = GenerateConfig(max_new_tokens=40, temperature=0.0, repetition_penalty=1.2)  # no "a a a a"
    session = ChatSession(model, tokenizer, load_template(model_dir), config)
    answers: list[Answer] = []
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


# ---- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[DemoConfig], dict]
    needs: tuple[str, ...]  # the stages whose outputs it reads (they must have run, now or before)
    output: str | None  # the directory under out/ it leaves for later stages
    headline: Callable[[dict], str]  # its result in one line, for the report


def _instruct_headline(r: dict) -> str:
    return "; ".join(
        f"{name} {before_after(r.get(key) or {}, spec).replace('->', '→')}"
        for key, name, spec in INSTRUCT_SCORES[:3]
    )


def _pretrain_headline(r: dict) -> str:
    nan = float("nan")
    return f"val {r.get('val_loss') or nan:.3f} nats/token, {r.get('val_bpb') or nan:.3f} bits/byte"


STAGES: tuple[Stage, ...] = (
    Stage("tokenize", tokenize, (), "tokenizer", lambda r: f"{r['vocab_size']:,} tokens"),
    Stage("pretrain", pretrain, ("tokenize",), "pretrain", _pretrain_headline),
    Stage(
        "classify",
        classify,
        ("pretrain",),
        "classify",
        lambda r: f"test accuracy {r['test_accuracy']:.1%} on unseen modules, {len(r['labels'])} areas",
    ),
    Stage("instruct", instruct, ("pretrain",), "instruct/model", _instruct_headline),
    Stage(
        "chat",
        chat,
        ("instruct",),
        None,
        lambda r: f"{len(r.get('answers', []))} held-out questions answered",
    ),
)
BY_NAME = {stage.name: stage for stage in STAGES}


def check_needs(cfg: DemoConfig, stage: Stage) -> None:
    """A clear error when an earlier stage's output is missing: which stage to run first."""
    for need in stage.needs:
        path = cfg.out / BY_NAME[need].output
        if not path.exists():
            raise ScratchLMError(
                f"{path} is missing: run `scratchlm demo --stage {need}` first (or the whole demo)"
            )


# ---- reusing what an earlier run left ------------------------------------------------------------------


def _reusing(cfg: DemoConfig, path: Path) -> bool:
    """True when `path` holds an earlier output this run reuses; with --fresh it is removed first (and so
    never reused)."""
    if cfg.fresh and path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if path.exists():
        cfg.say(f"reusing {path} (--fresh starts it over)")
        return True
    return False


def _finished(cfg: DemoConfig, run: Path, kind: str) -> dict | None:
    """The result of a fine-tune that already ran (to reuse), else None; `run` is cleared."""
    if _reusing(cfg, run / RESULT_FILE):
        result, departures = read_result(run, kind)
        if departures:
            _mismatch(cfg, f"a {kind} result of another version ({departures[0]})", "this version's")
        return result
    shutil.rmtree(run, ignore_errors=True)
    return None


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


def _spread(rows: list, n: int | None) -> list:
    """Every k-th row, n in all (the whole list when n is None): a spread, not the first module's rows."""
    if n is None or len(rows) <= n:
        return rows
    return rows[:: len(rows) // n][:n]


def model_config(vocab_size: int) -> ModelConfig:
    """The demo's model (MODEL: a preset and its overrides) for a tokenizer of `vocab_size`."""
    from scratchlm.config import preset

    settings = dict(MODEL)
    return preset(settings.pop("preset"), vocab_size=vocab_size, **settings)


def _step_estimate(cfg: DemoConfig) -> float:
    """Seconds per step of the demo's model at batch 16, from the pretraining run's own log."""
    from scratchlm.train.runlog import read_metrics

    rates = [r["tokens_per_s"] for r in read_metrics(cfg.out / "pretrain") if r.get("tokens_per_s")]
    if not rates:
        return 0.1
    rates.sort()
    return 16 * MODEL["context_length"] / rates[len(rates) // 2]
