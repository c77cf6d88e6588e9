"""report.md + report.html for the whole demo, from demo.json (each stage's declared result, see
`stages.py`): the stages' headlines and times, the key pictures, the confusion matrix, the instruction
scores before and after, the answers, what data it read, and the settings."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from scratchlm.demo.config import MODEL, PRETRAIN, SHARES, DemoConfig, redo_command
from scratchlm.demo.stages import INSTRUCT_SCORES, STAGES, before_after
from scratchlm.files import sha256_file, write_atomic
from scratchlm.report import Code, Image, Table, config_table, render_html, render_markdown, tokenizer_rows

PICTURES = (("pretrain/loss.png", "pretraining loss"), ("classify/confusion.png", "classifier, test set"))


def write_demo_report(cfg: DemoConfig, results: dict) -> None:
    rows = [
        [stage.name, stage.headline(results[stage.name]), f"{results[stage.name].get('seconds', 0):.0f}"]
        for stage in STAGES
        if stage.name in results
    ]
    rows.append(["all", "", f"{sum(r.get('seconds', 0) for r in results.values()):.0f}"])
    sections = [("Stages", [Table(["stage", "result", "seconds"], rows), Code(redo_command(cfg))])]
    images = [Image(f, c) for f, c in PICTURES if (cfg.out / f).is_file()]
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
        scores = [
            [name, *before_after(r.get(key) or {}, spec).split(" -> ")] for key, name, spec in INSTRUCT_SCORES
        ]
        sections.append(("Instruction tuning: held-out questions", [Table(["", "before", "after"], scores)]))
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
    sections.append(("Data", [Table(["", "value"], data_rows(cfg))]))
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


def data_rows(cfg: DemoConfig) -> list[list[str]]:
    """What the demo read: the Python whose library it is, the pretraining text with its SHA-256, the
    tokenizer's fingerprint, the fine-tuning tables."""
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
