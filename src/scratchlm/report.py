"""The run report: `report.md` and `report.html` in a run directory, written from what the run left there.

Reads config, metrics.jsonl, samples.jsonl, eval.json (by the names `scratchlm.results` declares),
responses.json and the PNGs, and knows nothing about models or training, so any run, finished or not, can
be reported again (`scratchlm report RUN_DIR`). The content is built once, as sections of plain-text
blocks, and rendered twice. The HTML is one static file: CSS inline, the PNGs as data URIs, no script, no
external URL, every text escaped (samples are model output).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_atomic
from scratchlm.results import RESULT_FILE, read_result
from scratchlm.train.runlog import read_metrics

COMMAND_FILE = "command.txt"
KINDS = {
    "pretrain": "pretraining",
    "classify": "classification fine-tune",
    "instruct": "instruction fine-tune",
}
CAPTIONS = {
    "loss.png": "training and validation loss",
    "curves.png": "loss and accuracy",
    "lr.png": "learning rate",
    "confusion.png": "test confusion matrix, each cell shaded by its share of the true class",
}
MAX_SAMPLE_STEPS = 8  # evaluations whose samples are shown: the first, the last and evenly between
MAX_RESPONSES = 6
MAX_ROWS = 40  # of the events and shard lists
SCORES = (  # of instruction tuning
    ("exact_match", "exact match", ".1%"),
    ("first_clause_match", "first-clause match", ".1%"),
    ("rouge_l", "ROUGE-L", ".4f"),
)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    is_text: bool = False  # long texts (samples, responses): wrapped, whitespace kept


@dataclass
class Image:
    file: str  # a PNG in the run directory
    caption: str


@dataclass
class Code:
    text: str


Block = str | Table | Image | Code  # a str is a paragraph
Section = tuple[str, list[Block]]


# ---- the shell ---------------------------------------------------------------------------------------------
def write_report(run_dir: str | Path, command: str | None = None) -> tuple[Path, Path]:
    """Write report.md and report.html into `run_dir` (atomically); returns their paths. `command`, the
    command line that made the run, is kept in command.txt, so a later report still shows it."""
    run = Path(run_dir)
    kind = detect_kind(run)
    if command:
        record_command(run, command)
    title = f"{run.resolve().name}: {KINDS.get(kind, kind)}"
    sections = build_sections(run, kind)
    md = write_atomic(run / "report.md", render_markdown(title, sections))
    return md, write_atomic(run / "report.html", render_html(title, sections, run))


def write_report_safely(run_dir: str | Path, command: str | None = None) -> tuple[Path, Path] | None:
    """For the end of a run: its weights and metrics are saved by then, so a report that fails is a warning
    on stderr, never a failed run."""
    try:
        return write_report(run_dir, command)
    except Exception as exc:
        print(f"scratchlm: warning: no run report for {run_dir}: {exc}", file=sys.stderr)
        return None


def detect_kind(run: Path) -> str:
    """The `kind` its config.json names (pretrain, classify, instruct), or "run" for any other directory
    with a metrics.jsonl."""
    config = _read(run / "config.json")
    if isinstance(config, dict) and config.get("kind") in KINDS:
        return config["kind"]
    if (run / "metrics.jsonl").is_file():
        return "run"
    raise ScratchLMError(f"{run}: not a run directory (no metrics.jsonl or config.json)")


def record_command(run: Path, command: str) -> None:
    """Append `command` to command.txt unless it is the last line already (a resumed run adds its own)."""
    lines = read_commands(run)
    if lines[-1:] != [command]:
        write_atomic(run / COMMAND_FILE, "".join(f"{line}\n" for line in [*lines, command]))


def read_commands(run: Path) -> list[str]:
    path = run / COMMAND_FILE
    return [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.is_file() else []


def _read(path: Path):
    return read_json(path) if path.is_file() else None


# ---- the content -------------------------------------------------------------------------------------------
def build_sections(run: Path, kind: str) -> list[Section]:
    records = read_metrics(run)
    result, departures = read_result(run, kind)
    if departures:  # a file this version did not write: its numbers are left out, and the report says why
        result = {}
    if kind == "instruct" and result and not result.get("judge"):
        judge = judge_of(_read(run / "responses.json") or [])
        result |= {"judge": judge} if judge else {}
    config = _read(run / "config.json")
    config = config if isinstance(config, dict) else {}
    beside_its_table = ("confusion.png",) if kind == "classify" and result else ()
    sections: list[Section] = [
        ("Summary", summary(run, kind, records, result, config)),
        ("Result file", [_departures_note(departures)] if departures else []),
        ("Reproduce", reproduce(run, kind)),
        ("Curves", [Image(p.name, CAPTIONS.get(p.name, p.stem)) for p in _pngs(run, beside_its_table)]),
    ]
    if kind == "classify" and result:
        sections.append(("Test evaluation", classify_eval(result)))
    if kind == "instruct" and result:
        sections.append(("Test evaluation", instruct_eval(run, result)))
    if kind == "pretrain":
        sections.append(("Samples at each evaluation", samples(run, records)))
    sections += [
        ("Data", data_fingerprint(run, kind, config, result)),
        ("Events", events(records)),
        ("Config", [config_table(config)] if config else []),
    ]
    return [(name, blocks) for name, blocks in sections if blocks]


def _departures_note(departures: list[str]) -> str:
    shown = "; ".join(departures[:8]) + (f"; and {len(departures) - 8} more" if len(departures) > 8 else "")
    return (
        f"{RESULT_FILE} departs from what this version declares (scratchlm/results.py), so its numbers are "
        f"left out here (the metrics above are the run's own): {shown}."
    )


def summary(run: Path, kind: str, records: list[dict], result: dict, config: dict) -> list[Block]:
    """The key numbers: steps, losses, the task's scores, speed and time."""
    times = [r["time"] for r in records if isinstance(r.get("time"), (int, float))]
    started = _date(min(times)) if times else "at an unknown time"
    steps, evals = _by_step(records, "loss"), _by_step(records, "val_loss")
    rows: list[list[str]] = []
    if steps:
        planned = result.get("steps") or (config.get("train") or {}).get("max_steps")
        rows.append(["steps", f"{max(steps):,}" + (f" of {planned:,}" if planned else "")])
        if "tokens" in steps[max(steps)]:
            rows.append(["tokens", f"{steps[max(steps)]['tokens']:,}"])
        rows.append(["train loss", _final_best(steps, "loss", ".4f")])
    for key, name, spec in (
        ("val_loss", "val loss", ".4f"),
        ("val_ppl", "val perplexity", ".2f"),
        ("val_bpb", "val bits per byte", ".4f"),
        ("val_accuracy", "val accuracy", ".2%"),
    ):
        if any(key in r for r in evals.values()):
            rows.append([name, _final_best(evals, key, spec, higher=key == "val_accuracy")])
    rows += fine_tune_numbers(kind, result)
    for key, name, spec in (("tokens_per_s", "tokens/s (median)", ",.0f"), ("mfu", "MFU (median)", ".2%")):
        values = [r[key] for r in steps.values() if isinstance(r.get(key), (int, float))]
        if values:
            rows.append([name, format(statistics.median(values), spec)])
    peak = next((r for r in records if r.get("event") == "peak_flops"), None)
    if peak:
        source = f"{peak.get('source')}, {peak.get('precision')}"
        rows.append(["peak FLOP/s", f"{peak['flops'] / 1e12:.3g} TFLOP/s ({source})"])
    if times:
        rows.append(["wall time", f"{_duration(max(times) - min(times))} (first to last metrics record)"])
    rows += stage_times(kind, result)
    what = KINDS.get(kind, kind).capitalize()
    line = f"{what} in {run.resolve()}, started {started}; this report written {_date(None)}."
    return [line, Table(["", "value"], rows)]


def fine_tune_numbers(kind: str, result: dict) -> list[list[str]]:
    """The headline scores of a fine-tune, from its eval.json."""
    rows = []
    if kind == "classify" and "test" in result:
        test = result["test"]
        rows += [
            ["test accuracy", f"{test['accuracy']:.2%} of {test['examples']:,}"],
            ["test macro F1", f"{test['macro']['f1']:.4f}"],
            ["kept weights", f"step {result['best']['step']} (best val {result['best']['select']})"],
        ]
    if kind == "instruct" and result:
        rows.append(["kept weights", f"step {result.get('best_step')} (best val loss)"])
        if "test_response_ppl" in result:
            ppl = result["test_response_ppl"]
            rows.append(["test response perplexity", f"{_num(ppl['before'])} → {_num(ppl['after'])}"])
        before = result.get("before") or {}
        rows += [
            [name, (f"{_num(before[key], spec)} → " if key in before else "") + _num(result[key], spec)]
            for key, name, spec in SCORES
            if key in result
        ]
        if result.get("judge"):
            rows.append(["judge score", _num(result["judge"].get("mean_score"), ".1f")])
    report = result.get("parameters")
    if report:
        share = f"{report['trainable']:,} of {report['total']:,} ({report['share']:.2%})"
        rows.append(["trained parameters", share])
    return rows


def stage_times(kind: str, result: dict) -> list[list[str]]:
    """Seconds per stage, as the fine-tunes record them in eval.json."""
    seconds = dict(result.get("seconds", {})) if kind == "classify" else {}
    if kind == "instruct":
        names = ("baseline", "train", "generate", "total")
        seconds = {n: result[f"{n}_seconds"] for n in names if f"{n}_seconds" in result}
    return [[f"time: {name}", _duration(value)] for name, value in seconds.items()]


def reproduce(run: Path, kind: str) -> list[Block]:
    commands = read_commands(run)
    if commands:
        then = ", then those that continued it:" if len(commands) > 1 else ":"
        return [f"The command that made this run{then}", Code("\n".join(commands))]
    blocks: list[Block] = ["No command was recorded (the run was started from Python)."]
    command = {"pretrain": "pretrain", "classify": "finetune classify", "instruct": "finetune instruct"}
    if kind in command:  # config.json is the whole RunConfig, and JSON is YAML
        line = f"scratchlm {command[kind]} --config {run}/config.json --out NEW_RUN"
        blocks += ["The same settings:", Code(line)]
    return blocks


def classify_eval(result: dict) -> list[Block]:
    """Per-class precision/recall/F1, the confusion matrix as a table and as the picture."""
    test, labels = result["test"], result["labels"]
    correct = sum(test["confusion"][i][i] for i in range(len(labels)))
    rows = [
        [label, *(f"{m[k]:.4f}" for k in ("precision", "recall", "f1")), f"{m['support']:,}"]
        for label, m in test["per_class"].items()
    ]
    rows.append(["macro", *(f"{test['macro'][k]:.4f}" for k in ("precision", "recall", "f1")), ""])
    confusion = [[y, *(f"{n:,}" for n in row)] for y, row in zip(labels, test["confusion"])]
    blocks: list[Block] = [
        f"Accuracy {test['accuracy']:.2%} ({correct:,} of {test['examples']:,}), "
        f"test loss {_num(test.get('loss'), '.4f')}.",
        Table(["class", "precision", "recall", "F1", "support"], rows),
        "Confusion matrix (rows: true label, columns: predicted):",
        Table(["true \\ predicted", *labels], confusion),
        Image("confusion.png", CAPTIONS["confusion.png"]),
    ]
    if result.get("val"):
        val = result["val"]
        step = result["best"]["step"]
        blocks.append(
            f"Best validation, step {step}: accuracy {val['accuracy']:.2%}, loss {val['loss']:.4f}."
        )
    return blocks


def instruct_eval(run: Path, result: dict) -> list[Block]:
    """The test responses' perplexity before and after, EM, ROUGE-L, the judge, and responses beside
    their references."""
    rows = [
        [name, _num(result[key]["before"], spec), _num(result[key]["after"], spec)]
        for key, name, spec in (
            ("test_response_ppl", "response perplexity", ".2f"),
            ("test_response_nll", "response loss (nats per token)", ".4f"),
        )
        if key in result
    ]
    before = result.get("before") or {}
    rows += [
        [name, _num(before[key], spec) if key in before else "", _num(result[key], spec)]
        for key, name, spec in SCORES
        if key in result
    ]
    judge = result.get("judge")
    if judge:
        name = f"judge score ({judge.get('judge_model')}, {judge.get('scored')} scored)"
        rows.append([name, "", _num(judge.get("mean_score"), ".2f")])
    blocks: list[Block] = [Table(["test split", "before", "after"], rows)] if rows else ["No test split."]
    records = _read(run / "responses.json") or []
    if records:
        judged = any("judge_score" in r for r in records)
        baseline = any("response_before" in r for r in records)
        shown = [
            [
                r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else ""),
                r["reference"],
                *([r.get("response_before", "")] if baseline else []),
                r["response"],
                *([_num(r.get("judge_score"), "g")] if judged else []),
            ]
            for r in records[:MAX_RESPONSES]
        ]
        header = [
            "instruction",
            "reference",
            *(["before"] if baseline else []),
            "response",
            *(["judge"] if judged else []),
        ]
        blocks += [
            f"{len(shown)} of the {len(records)} test responses (all in responses.json):",
            Table(header, shown, is_text=True),
        ]
    return blocks


def judge_of(records: list[dict]) -> dict | None:
    """The mean of the judge scores in responses.json, as `scratchlm eval judge --out` leaves them there
    without touching eval.json."""
    scores = [r["judge_score"] for r in records if isinstance(r.get("judge_score"), (int, float))]
    if not scores:
        return None
    return {"judge_model": "responses.json", "mean_score": sum(scores) / len(scores), "scored": len(scores)}


def samples(run: Path, records: list[dict]) -> list[Block]:
    """The fixed prompt's continuation at each evaluation beside that evaluation's loss (the last sample
    of a step wins, as after a resume)."""
    by_step: dict[int, dict] = {}
    path = run / "samples.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            sample = json.loads(line)
            by_step[int(sample["step"])] = sample
        except (ValueError, KeyError, TypeError):  # a torn last line
            continue
    if not by_step:
        return []
    steps = _spread(sorted(by_step), MAX_SAMPLE_STEPS)
    val = _by_step(records, "val_loss")
    rows = [
        [f"{s:,}", _num(val.get(s, {}).get("val_loss"), ".4f"), by_step[s].get("text", "")] for s in steps
    ]
    prompts = sorted({json.dumps(by_step[s].get("prompt", ""), ensure_ascii=False) for s in steps})
    shown = f" ({len(steps)} of {len(by_step)} evaluations)" if len(steps) < len(by_step) else ""
    return [
        f"Prompt{'s' if len(prompts) > 1 else ''}: {', '.join(prompts)}{shown}",
        Table(["step", "val loss", "sample"], rows, is_text=True),
    ]


def data_fingerprint(run: Path, kind: str, config: dict, result: dict) -> list[Block]:
    """What the run read, as it recorded it: the tokenizer's fingerprint, the inputs with their sizes now,
    a shard directory's meta.json with the shards' SHA-256s (nothing big is hashed here)."""
    rows = tokenizer_rows(run)
    task = config.get(kind) or {}
    if kind in ("classify", "instruct"):
        rows.append(["base model", str((config.get("train") or {}).get("init"))])
        rows += [
            [f"{name} file", _file_size(task[name])] for name in ("data", "val", "test") if task.get(name)
        ]
    if kind == "classify":
        for split, counts in result.get("examples", {}).items():
            rows.append([f"{split} examples", ", ".join(f"{y} {n:,}" for y, n in counts.items())])
    if kind == "instruct" and result.get("examples"):
        rows.append(["examples", ", ".join(f"{split} {n:,}" for split, n in result["examples"].items())])
    if kind == "pretrain":
        data, init = config.get("data") or {}, (config.get("train") or {}).get("init")
        rows += [["initial weights", str(init)]] if init else []
        if data.get("shards"):  # they win over inputs
            rows += shard_rows(Path(data["shards"]))
        else:
            rows += [["input", _file_size(item)] for item in data.get("inputs") or ()]
    return [Table(["", "value"], rows)] if rows else []


def tokenizer_rows(run: Path) -> list[list[str]]:
    """Name, vocabulary size and fingerprint of the tokenizer saved with the run (or with its model)."""
    from scratchlm.formats.tokenizer_files import has_tokenizer, load_tokenizer

    for where in (run / "tokenizer", run / "model"):
        if where.is_dir() and has_tokenizer(where):
            tok = load_tokenizer(where)
            name = getattr(tok, "name", type(tok).__name__)
            rows = [["tokenizer", f"{name} ({where.name}/), vocabulary {tok.vocab_size:,}"]]
            return rows + (
                [["tokenizer fingerprint", tok.fingerprint]] if hasattr(tok, "fingerprint") else []
            )
    return []


def shard_rows(shards: Path) -> list[list[str]]:
    """A shard directory as its meta.json describes it."""
    meta = _read(shards / "meta.json")
    if not isinstance(meta, dict):
        return [["shards", f"{shards} (no meta.json there now)"]]
    tok = meta.get("tokenizer") or {}
    inputs = ", ".join(meta.get("inputs", []))
    corpus = f"{inputs}: {meta.get('files', 0):,} file(s), {meta.get('bytes', 0):,} bytes"
    rows = [
        ["shards", f"{shards}, prepared {meta.get('created')}"],
        ["shard tokenizer", f"{tok.get('name')}, fingerprint {tok.get('fingerprint')}"],
        ["corpus", corpus],
        ["tokens", ", ".join(f"{split} {n:,}" for split, n in (meta.get("tokens") or {}).items())],
    ]
    for split, files in (meta.get("shards") or {}).items():
        for s in files[:MAX_ROWS]:
            rows.append(
                [f"{split} shard", f"{s['file']}: {s['tokens']:,} tokens, sha256 {s.get('sha256', '')[:16]}"]
            )
    return rows


def events(records: list[dict]) -> list[Block]:
    """What the run logged besides steps and evaluations: peak FLOP/s, resumes, roll-backs, stops."""
    start = next((r["time"] for r in records if "time" in r), None)
    rows = [
        [
            f"+{_duration(r['time'] - start)}" if start is not None and "time" in r else "",
            str(r["event"]),
            _compact({k: v for k, v in r.items() if k not in ("time", "event")}),
        ]
        for r in records
        if "event" in r
    ]
    more = [f"… and {len(rows) - MAX_ROWS} more in metrics.jsonl"] if len(rows) > MAX_ROWS else []
    return [Table(["time", "event", "details"], rows[:MAX_ROWS]), *more] if rows else []


def config_table(config: dict) -> Table:
    """A row per section (or setting), its settings as compact key=value pairs."""
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
        rows.append([key, _compact(value)])
    return Table(["section", "settings"], rows)


# ---- small helpers -----------------------------------------------------------------------------------------
def _by_step(records: list[dict], key: str) -> dict[int, dict]:
    """Records with `key` by step, in step order; the last of a step wins (a resumed run logs steps again)."""
    found = {
        r["step"]: r for r in records if key in r and isinstance(r.get("step"), int) and "event" not in r
    }
    return dict(sorted(found.items()))


def _final_best(by_step: dict[int, dict], key: str, spec: str, higher: bool = False) -> str:
    """ "final 1.2345, best 1.1000 (step 40)": the value at the last step and the best one."""
    values = {s: r[key] for s, r in by_step.items() if isinstance(r.get(key), (int, float))}
    finite = {s: v for s, v in values.items() if math.isfinite(v)}
    if not finite:
        return "n/a"
    best = (max if higher else min)(finite, key=finite.__getitem__)
    final = values[max(values)]
    return f"final {_num(final, spec)}, best {_num(finite[best], spec)} (step {best:,})"


def _num(value, spec: str = ".2f") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return format(value, spec) if math.isfinite(value) else str(value)


def _spread(items: list, n: int) -> list:
    """At most `n` of `items`, evenly spaced, the first and the last among them."""
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def _pngs(run: Path, leave_out: tuple[str, ...] = ()) -> list[Path]:
    """The run's pictures, the known ones first (never a half-written `.tmp.png`)."""
    known = list(CAPTIONS)
    found = [p for p in run.glob("*.png") if not p.name.endswith(".tmp.png") and p.name not in leave_out]
    return sorted(found, key=lambda p: (known.index(p.name) if p.name in known else len(known), p.name))


def _file_size(item: str) -> str:
    """A data input and its size now: a file, or a directory or glob with its text files."""
    from scratchlm.tokenizer.corpus import expand_inputs

    try:
        files = expand_inputs([item])
    except (ScratchLMError, OSError):
        return f"{item} (not there now)"
    size = sum(f.stat().st_size for f in files)
    return f"{item}: {size:,} bytes" + (f" in {len(files):,} files" if len(files) > 1 else "")


def _compact(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _date(seconds: float | None) -> str:
    moment = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    """
    >>> _duration(148.4), _duration(12.34), _duration(0.031), _duration(7384)
    ('2 min 28 s', '12.3 s', '0.03 s', '2 h 3 min')
    """
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


# ---- rendering ---------------------------------------------------------------------------------------------
def render_markdown(title: str, sections: list[Section]) -> str:
    """Markdown that links the PNGs beside it; texts are escaped, so any renderer shows them as written."""
    out = [f"# {_md(title)}", ""]
    for name, blocks in sections:
        out += [f"## {name}", "", *(f"{_md_block(b)}\n" for b in blocks)]
    return "\n".join(out)


def _md_block(block: Block) -> str:
    if isinstance(block, str):
        return _md(block)
    if isinstance(block, Image):
        return f"![{_md(block.caption)}]({block.file})"
    if isinstance(block, Code):  # a fence longer than any run of backticks inside
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", block.text)), default=0))
        return f"{fence}\n{block.text}\n{fence}"
    lines = [block.header, ["---"] * len(block.header), *block.rows]
    return "\n".join("| " + " | ".join(_md_cell(c) for c in line) + " |" for line in lines)


def _md(text: str) -> str:
    return html.escape(text, quote=False)


def _md_cell(text: str) -> str:
    return text if text == "---" else _md(text).replace("|", "&#124;").replace("\n", "<br>")


CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; margin: 0 }
main { max-width: 1100px; margin: 0 auto; padding: 24px }
h1 { font-size: 24px; margin: 0 0 8px }
h2 { font-size: 18px; border-bottom: 1px solid #d8dce3; padding-bottom: 4px }
section { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 4px 20px 16px;
  margin: 16px 0 }
table { border-collapse: collapse; margin: 8px 0 }
th, td { border: 1px solid #e2e5ea; padding: 4px 10px; text-align: left; vertical-align: top }
th { background: #f0f2f5 } td.num { text-align: right; font-variant-numeric: tabular-nums }
table.text td { white-space: pre-wrap; font: 13px/1.4 ui-monospace, monospace; max-width: 480px;
  overflow-wrap: anywhere }
pre { background: #f0f2f5; padding: 10px; white-space: pre-wrap; overflow-wrap: anywhere }
figure { display: inline-block; margin: 8px 16px 8px 0 } img { max-width: 100%; border: 1px solid #e2e5ea }
figcaption { color: #5b6472; font-size: 13px }
"""
# Nothing runs and nothing loads but the inlined pictures, whatever a text holds.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_html(title: str, sections: list[Section], run: Path) -> str:
    """One self-contained page: CSS inline, PNGs as data URIs, every text escaped."""
    e = html.escape
    head = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head>\n<body><main><h1>{e(title)}</h1>\n"
    )
    body = "".join(
        f"<section><h2>{e(name)}</h2>\n" + "\n".join(_html_block(b, run) for b in blocks) + "</section>\n"
        for name, blocks in sections
    )
    return head + body + "</main></body></html>\n"


def _html_block(block: Block, run: Path) -> str:
    e = html.escape
    if isinstance(block, str):
        return f"<p>{e(block)}</p>"
    if isinstance(block, Code):
        return f"<pre>{e(block.text)}</pre>"
    if isinstance(block, Image):
        path = run / block.file
        if not path.is_file():
            return f"<p>({e(block.file)} is missing)</p>"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{e(block.caption)}">'
            f"<figcaption>{e(block.file)}: {e(block.caption)}</figcaption></figure>"
        )
    head = "".join(f"<th>{e(h)}</th>" for h in block.header)
    align = len(block.header) > 2  # numbers in columns, not the values of a two-column list
    rows = "".join("<tr>" + "".join(_html_cell(c, align) for c in row) + "</tr>\n" for row in block.rows)
    kind = "text" if block.is_text else "values"
    return f'<table class="{kind}"><thead><tr>{head}</tr></thead>\n<tbody>{rows}</tbody></table>'


def _html_cell(text: str, align: bool) -> str:
    """A cell, right-aligned when it is a number (and `align`)."""
    is_number = align and re.fullmatch(r"[-+]?[\d,.]+%?", text.strip()) is not None
    return f'<td class="num">{html.escape(text)}</td>' if is_number else f"<td>{html.escape(text)}</td>"
