"""`scratchlm classify --model DIR "text" …`: label texts with a classifier made by `scratchlm finetune
classify`: the texts given, those of a file (`--input`), or stdin's lines; a table on stdout or a CSV/JSONL
file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.files import write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", "-m", required=True, help="a classifier directory, or the run directory that holds it"
    )
    parser.add_argument("texts", nargs="*", help="texts to label (default: --input, or stdin's lines)")
    parser.add_argument(
        "--input", "-i", help="a file of texts: .txt (one per line), .jsonl/.json, .csv/.tsv (--text-field)"
    )
    parser.add_argument(
        "--text-field", default="text", help="the text's key or column (name, or 0-based index)"
    )
    parser.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether a CSV/TSV input starts with a header row (default: when --text-field is a name)",
    )
    parser.add_argument("--output", "-o", help="write .csv or .jsonl instead of a table on stdout")
    parser.add_argument("--batch-size", "-b", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.set_defaults(run=run)


def read_texts(args: argparse.Namespace) -> list[str]:
    """The texts: arguments, else the --input file, else stdin's non-empty lines."""
    from scratchlm.data.classification import read_rows

    if args.texts and args.input:
        raise ScratchLMError("give texts as arguments or --input FILE, not both")
    if args.texts:
        return list(args.texts)
    if args.input:
        return [row[0] for row in read_rows(args.input, [args.text_field], args.header)]
    if sys.stdin is None or sys.stdin.isatty():
        raise ScratchLMError("no texts: give them as arguments, with --input FILE, or on stdin")
    texts = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not texts:
        raise ScratchLMError("stdin holds no text")
    return texts


def run(args: argparse.Namespace) -> int:
    from scratchlm.generate.classifier import Classifier

    if args.batch_size < 1:
        raise ScratchLMError(f"--batch-size must be at least 1, got {args.batch_size}")
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in (".csv", ".jsonl"):
        raise ScratchLMError(f"--output {output}: use a .csv or .jsonl file")
    texts = read_texts(args)
    classifier = Classifier.from_dir(args.model, device=args.device)
    predictions = classifier.predict(texts, batch_size=args.batch_size)
    labels = classifier.labels
    if output is None:
        print("\t".join(["label", *labels, "text"]))
        for text, p in zip(texts, predictions):
            shown = " ".join(text.split())  # one line per text, whatever it holds
            print("\t".join([p.label, *(f"{p.probabilities[y]:.4f}" for y in labels), shown]))
        return 0
    if output.suffix.lower() == ".jsonl":
        lines = [
            json.dumps({"text": t, "label": p.label, "probabilities": p.probabilities}, ensure_ascii=False)
            for t, p in zip(texts, predictions)
        ]
        content = "\n".join(lines) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["text", "label", *(f"prob_{y}" for y in labels)])
        for t, p in zip(texts, predictions):
            writer.writerow([t, p.label, *(f"{p.probabilities[y]:.6f}" for y in labels)])
        content = buffer.getvalue()
    write_atomic(output, content)
    print(f"labelled {len(texts):,} texts → {output}", file=sys.stderr)
    return 0
