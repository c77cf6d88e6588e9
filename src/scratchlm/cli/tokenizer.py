"""`scratchlm tokenizer train|encode|decode|stats|show`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from scratchlm.cli.text_input import add_text_flags, read_text
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import load_tokenizer, save_tokenizer
from scratchlm.tokenizer import (
    EOT,
    PATTERNS,
    DisallowedSpecialTokenError,
    Tokenizer,
    WordTokenizer,
    train_bpe,
)
from scratchlm.tokenizer.corpus import expand_inputs, plan_blocks, read_block
from scratchlm.tokenizer.display import render_tokens, token_text
from scratchlm.tokenizer.stats import measure
from scratchlm.tokenizer.train import available_core


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("train", help="train a BPE (or word) tokenizer on files")
    p.add_argument(
        "--input", "-i", nargs="+", required=True, metavar="PATH", help="files, directories or globs"
    )
    p.add_argument("--out", "-o", required=True, help="output directory")
    p.add_argument("--kind", choices=["bpe", "word"], default="bpe")
    p.add_argument(
        "--vocab-size", type=int, default=4096, help="bytes + merges + special tokens (default 4096)"
    )
    p.add_argument(
        "--pattern", default="gpt4", help=f"split regex: {' or '.join(PATTERNS)} or a custom regex"
    )
    p.add_argument(
        "--special", action="append", metavar="TOKEN", help=f"special token (repeatable; default {EOT})"
    )
    p.add_argument("--no-special", action="store_true", help="no special tokens at all")
    p.add_argument(
        "--min-frequency", type=int, default=2, help="stop when the best pair is rarer (default 2)"
    )
    p.add_argument("--workers", type=int, default=None, help="processes for counting (default: all cores)")
    p.add_argument(
        "--core", choices=["auto", "c", "python"], default="auto", help="merge loop implementation"
    )
    p.add_argument(
        "--no-unk", action="store_true", help="word tokenizer: unknown words raise instead of <|unk|>"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(run=run_train)

    p = verbs.add_parser("encode", help="text to ids")
    _add_tokenizer_flag(p)
    add_text_flags(p)
    specials = p.add_mutually_exclusive_group()
    specials.add_argument(
        "--allow-special", action="store_true", help="special-token text becomes special tokens"
    )
    specials.add_argument(
        "--special-as-text", action="store_true", help="special-token text is encoded as text"
    )
    p.add_argument("--method", choices=["fast", "reference"], default="fast")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run_encode)

    p = verbs.add_parser("decode", help="ids to text")
    _add_tokenizer_flag(p)
    p.add_argument("ids", nargs="*", help="ids (space/comma separated or a JSON list); default: stdin")
    p.set_defaults(run=run_decode)

    p = verbs.add_parser("stats", help="bytes per token and vocabulary usage on files")
    _add_tokenizer_flag(p)
    p.add_argument(
        "--input", "-i", nargs="+", required=True, metavar="PATH", help="files, directories or globs"
    )
    p.add_argument("--top", type=_non_negative, default=10, help="show the N most frequent tokens")
    p.set_defaults(run=run_stats)

    p = verbs.add_parser("show", help="token boundaries in colour, ids beneath")
    _add_tokenizer_flag(p)
    add_text_flags(p)
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    p.set_defaults(run=run_show)


def _add_tokenizer_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tokenizer", "-t", default="gpt2", help="'gpt2', a tokenizer directory or file (default gpt2)"
    )
    p.add_argument(
        "--pattern", default=None, help="split pattern of a .tiktoken ranks file (gpt2, gpt4, regex)"
    )


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _load(args: argparse.Namespace) -> Tokenizer | WordTokenizer:
    return load_tokenizer(args.tokenizer, pattern=args.pattern)


def run_train(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # fail on a bad output path before training, not after
    if args.kind == "word":
        files = expand_inputs(args.input)
        texts = [read_block(b) for f in files for b in plan_blocks(f)]
        tok = WordTokenizer.build(texts, unk=not args.no_unk)
        path = save_tokenizer(tok, out)
        print(f"word tokenizer: {tok.vocab_size:,} words -> {path}")
        return 0
    specials = [] if args.no_special else (args.special or [EOT])
    tok = train_bpe(
        files=args.input,
        vocab_size=args.vocab_size,
        pattern=args.pattern,
        special_tokens=specials,
        min_frequency=args.min_frequency,
        workers=args.workers,
        show_progress=not args.quiet,
        core=args.core,
        name=out.name or "bpe",
    )
    seconds = time.perf_counter() - start
    path = save_tokenizer(tok, out)
    core = available_core() if args.core == "auto" else args.core
    print(f"BPE tokenizer: {tok.vocab_size:,} tokens in {seconds:.1f} s ({core} merge core) -> {out}/")
    print("  " + ", ".join(sorted(p.name for p in out.iterdir() if not p.name.endswith(".tmp"))))
    if tok.vocab_size < args.vocab_size:
        print(
            f"  note: stopped at {tok.vocab_size:,} of {args.vocab_size:,} tokens: no pair occurs "
            f"{args.min_frequency}+ times any more (more text, or a lower --min-frequency)"
        )
    return 0


def run_encode(args: argparse.Namespace) -> int:
    tok = _load(args)
    text = read_text(args)
    if isinstance(tok, WordTokenizer):
        ids = tok.encode(text)
    else:
        try:
            ids = tok.encode(
                text,
                allowed_special="all" if args.allow_special else (),
                disallowed_special=() if args.special_as_text else "all",
                method=args.method,
            )
        except DisallowedSpecialTokenError as exc:
            raise ScratchLMError(
                f"the text contains the special token {exc.token!r}: pass --allow-special to encode it "
                "as that token, or --special-as-text to encode it as plain text"
            ) from None
    print(json.dumps(ids) if args.json else " ".join(map(str, ids)))
    return 0


def parse_ids(items: list[str]) -> list[int]:
    """'1 2,3' or '[1, 2, 3]' -> [1, 2, 3]; anything else is a clear error."""
    raw = " ".join(items).strip()
    if raw.startswith("["):
        try:
            ids = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ScratchLMError(f"ids: not a JSON list ({exc})") from None
    else:
        ids = [part for part in re.split(r"[\s,]+", raw) if part]
    try:
        parsed = [i if isinstance(i, int) and not isinstance(i, bool) else int(str(i), 10) for i in ids]
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or not isinstance(ids, list):
        raise ScratchLMError("ids must be integers, separated by spaces or commas, or a JSON list")
    return parsed


def run_decode(args: argparse.Namespace) -> int:
    tok = _load(args)
    if not args.ids and (sys.stdin is None or sys.stdin.isatty()):
        raise ScratchLMError("no ids: give them as arguments or on stdin")
    ids = parse_ids(args.ids or [sys.stdin.read()])
    sys.stdout.write(tok.decode(ids) + "\n")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    tok = _load(args)
    files = expand_inputs(args.input)
    texts = [read_block(b) for f in files for b in plan_blocks(f)]
    start = time.perf_counter()
    encode = tok.encode if isinstance(tok, WordTokenizer) else tok.encode_ordinary
    s = measure(tok, texts, encode=encode, top_k=args.top)
    seconds = time.perf_counter() - start
    print(f"tokenizer        {args.tokenizer} ({tok.vocab_size:,} tokens)")
    print(f"text             {len(files)} file(s), {s.n_bytes:,} bytes, {s.n_chars:,} characters")
    print(f"tokens           {s.n_tokens:,}")
    print(f"bytes / token    {s.bytes_per_token:.3f}")
    print(f"chars / token    {s.chars_per_token:.3f}")
    print(f"vocab usage      {s.n_distinct:,} of {s.vocab_size:,} tokens occur ({100 * s.vocab_usage:.1f}%)")
    print(f"encode speed     {s.n_bytes / 1e6 / max(seconds, 1e-9):.2f} MB/s")
    if s.top:
        print("most frequent    " + "  ".join(f"{token_text(tok, i)!r}×{n:,}" for i, n in s.top))
    return 0


def run_show(args: argparse.Namespace) -> int:
    tok = _load(args)
    text = read_text(args)
    if isinstance(tok, WordTokenizer):
        ids = tok.encode(text)
    else:
        ids = tok.encode(text, allowed_special="all")
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    width = shutil.get_terminal_size((100, 24)).columns
    print(render_tokens([token_text(tok, i) for i in ids], ids, color, width))
    print(f"{len(ids)} tokens, {len(text.encode('utf-8'))} bytes")
    return 0
