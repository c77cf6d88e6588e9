"""`scratchlm data prepare|info|windows`: token shards for big corpora, and the book's window demo.

Only `windows` needs torch, so the loader is imported inside it: `prepare` and `info` start without it."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import regex

from scratchlm.cli.text_input import add_text_flags, read_text
from scratchlm.data.prepare import prepare_shards
from scratchlm.data.shards import check_shards, read_meta
from scratchlm.errors import ScratchLMError
from scratchlm.formats.tokenizer_files import load_tokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("prepare", help="tokenize files into train/val shards (any corpus size)")
    p.add_argument(
        "--input", "-i", nargs="+", required=True, metavar="PATH", help="files, directories or globs"
    )
    p.add_argument(
        "--tokenizer", "-t", default="gpt2", help="'gpt2', a tokenizer directory or file (default gpt2)"
    )
    p.add_argument("--out", "-o", required=True, help="output directory")
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="documents held out for validation (default 0.1)"
    )
    p.add_argument(
        "--shard-tokens", type=_count, default=100_000_000, metavar="N", help="ids per shard (default 100M)"
    )
    sep = p.add_mutually_exclusive_group()
    sep.add_argument(
        "--doc-separator", metavar="TEXT", help=r"text between documents within a file, e.g. '\n\n\n'"
    )
    sep.add_argument("--doc-separator-regex", metavar="REGEX", help="a regex between documents")
    p.add_argument(
        "--separator-id", type=int, help="id appended after each document (default: <|endoftext|>)"
    )
    p.add_argument("--workers", type=int, default=None, help="tokenizing processes (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val document shuffle")
    p.add_argument("--overwrite", action="store_true", help="replace shards already in --out")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run_prepare)

    p = verbs.add_parser("info", help="what a shard directory holds")
    p.add_argument("directory")
    p.add_argument("--verify", action="store_true", help="also check every shard's SHA-256")
    p.set_defaults(run=run_info)

    p = verbs.add_parser("windows", help="the first input/target batches of a text (the book's ch. 2 demo)")
    p.add_argument(
        "--tokenizer", "-t", default="gpt2", help="'gpt2', a tokenizer directory or file (default gpt2)"
    )
    add_text_flags(p)
    p.add_argument("--context-length", type=int, default=4, help="tokens per window (default 4)")
    p.add_argument(
        "--stride", type=int, default=None, help="start-to-start distance (default: context length)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="windows per batch (default 8)")
    p.add_argument("--limit", type=int, default=1, help="batches to show (default 1)")
    p.add_argument("--shuffle", action="store_true", help="shuffle the windows (seeded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decode", action="store_true", help="also show each window as text")
    p.set_defaults(run=run_windows)

    data_dir = os.environ.get("SCRATCHLM_DATA_DIR")
    p = verbs.add_parser("list", help="public datasets by name: size, license, where they are")
    p.add_argument(
        "--data-dir", default=data_dir, help="a folder that may hold them (default $SCRATCHLM_DATA_DIR)"
    )
    p.set_defaults(run=run_list)

    p = verbs.add_parser("get", help="a dataset's local path: from --data-dir, the cache, or downloaded")
    p.add_argument("name", help="a name from `scratchlm data list`")
    p.add_argument(
        "--data-dir", default=data_dir, help="a folder that may hold it (default $SCRATCHLM_DATA_DIR)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run_get)


def _count(text: str) -> int:
    """'100M' -> 100_000_000; also k and G, or a plain integer."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (e.g. 1000000, 500k, 100M)")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _literal(text: str) -> str:
    r"""A separator typed in a shell: backslash escapes such as \n and \t become the characters."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def run_prepare(args: argparse.Namespace) -> int:
    separator = _literal(args.doc_separator) if args.doc_separator is not None else None
    if args.doc_separator_regex is not None:
        try:
            separator = regex.compile(args.doc_separator_regex)
        except regex.error as exc:
            raise ScratchLMError(f"invalid --doc-separator-regex: {exc}") from None
    meta = prepare_shards(
        args.input,
        args.tokenizer,
        args.out,
        val_fraction=args.val_fraction,
        shard_tokens=args.shard_tokens,
        doc_separator=separator,
        separator_id=args.separator_id,
        workers=args.workers,
        seed=args.seed,
        overwrite=args.overwrite,
        show_progress=not args.quiet,
    )
    docs, tokens = meta["documents"], meta["tokens"]
    empty = f", {docs['empty_skipped']} empty skipped" if docs["empty_skipped"] else ""
    print(f"documents  {docs['train'] + docs['val']:,} (train {docs['train']:,}, val {docs['val']:,}){empty}")
    print(f"tokens     {_split_summary(meta)}")
    print(f"dtype      {meta['dtype']} (vocab {meta['vocab_size']:,}), separator id {meta['separator_id']}")
    seconds, mb = max(meta["tokenize_seconds"], 1e-9), meta["bytes"] / 1e6
    print(
        f"time       {meta['seconds']:.2f} s, of which tokenizing {mb:.1f} MB {seconds:.2f} s: "
        f"{(tokens['train'] + tokens['val']) / seconds:,.0f} tokens/s, {mb / seconds:.2f} MB/s"
    )
    names = sorted(p.name + "/" * p.is_dir() for p in Path(args.out).iterdir())
    print(f"-> {args.out}/  " + " ".join(names if len(names) <= 8 else [*names[:7], "…"]))
    if meta["split_note"]:
        print(f"note: {meta['split_note']}")
    return 0


def _split_summary(meta: dict) -> str:
    parts = []
    for split, shards in meta["shards"].items():
        parts.append(f"{split} {meta['tokens'][split]:,} in {len(shards)} shard{'s' * (len(shards) != 1)}")
    return ", ".join(parts)


def run_info(args: argparse.Namespace) -> int:
    meta = read_meta(args.directory)
    check_shards(args.directory, meta, verify=args.verify)
    tok, docs = meta["tokenizer"], meta["documents"]
    fingerprint = f", fingerprint {tok['fingerprint'][:12]}" if tok.get("fingerprint") else ""
    print(f"shards     {args.directory} ({meta['format']} v{meta['version']}, created {meta['created']})")
    name = tok["spec"] or tok["name"]
    print(f"tokenizer  {name} (vocab {meta['vocab_size']:,}{fingerprint}), saved in {tok['dir']}/")
    print(f"dtype      {meta['dtype']}, {meta['byte_order']}-endian; separator id {meta['separator_id']}")
    print(f"inputs     {meta['files']:,} file(s), {meta['bytes']:,} bytes: {' '.join(meta['inputs'])}")
    print(
        f"documents  train {docs['train']:,}, val {docs['val']:,}, empty skipped {docs['empty_skipped']:,}"
        f" (val fraction {meta['val_fraction']}, seed {meta['seed']})"
    )
    print(f"tokens     {_split_summary(meta)}")
    if meta["split_note"]:
        print(f"note       {meta['split_note']}")
    if args.verify:
        n = sum(len(s) for s in meta["shards"].values())
        print(f"checksums  ok ({n} file{'s' * (n != 1)})")
    return 0


def run_windows(args: argparse.Namespace) -> int:
    from scratchlm.data.loader import create_dataloader, encode_text

    tok = load_tokenizer(args.tokenizer)
    ids = encode_text(read_text(args), tok)
    stride = args.context_length if args.stride is None else args.stride
    loader = create_dataloader(
        ids,
        context_length=args.context_length,
        stride=stride,
        batch_size=args.batch_size,
        shuffle=args.shuffle,
        drop_last=False,
        seed=args.seed,
    )
    n_windows = len(loader.dataset)
    print(
        f"{len(ids):,} tokens -> {n_windows:,} windows of {args.context_length} (stride {stride}) "
        f"-> {len(loader):,} batches of up to {args.batch_size}"
    )
    for n, (inputs, targets) in enumerate(loader, 1):
        if n > args.limit:
            break
        print(f"\nbatch {n}\ninputs:\n{inputs}\ntargets:\n{targets}")
        if args.decode:
            for row_in, row_out in zip(inputs.tolist(), targets.tolist()):
                print(f"  {tok.decode(row_in)!r} -> {tok.decode(row_out)!r}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from scratchlm.data.registry import DATASETS, status

    rows = [("name", "size", "license", "here", "what")]
    for d in DATASETS.values():
        size = f"{d.size / 1e6:.2f} MB" if d.size else "?"
        rows.append((d.name, size, d.license, status(d.name, args.data_dir), d.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print("\nhere: data-dir (found in --data-dir), cached, or - (`scratchlm data get NAME` downloads it)")
    return 0


def run_get(args: argparse.Namespace) -> int:
    from scratchlm.data.registry import get

    print(get(args.name, args.data_dir, show_progress=not args.quiet))
    return 0
