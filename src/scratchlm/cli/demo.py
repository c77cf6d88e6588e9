"""`scratchlm demo`: the main job, offline, on data every machine with Python has.

By default the whole pipeline (`scratchlm.demo`): a BPE tokenizer, a small GPT pretrained on Python's
own documentation, a classifier of docstrings by library area, LoRA instruction tuning on "What does X
do?", and a chat — each stage alone with `--stage`, the budget scaled with `--minutes`. `--tour` shows the
tokenizer and model basics instead (stages 1-5 of the book, seconds)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scratchlm.demo.config import STAGE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", "-o", default="runs/demo", help="where every stage writes (default runs/demo)"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget of all stages (default 10)")
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGE_NAMES,
        help="only this stage (repeatable); reuses earlier outputs",
    )
    parser.add_argument("--fresh", action="store_true", help="redo the chosen stages, not reuse their output")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary (default 4096)")
    parser.add_argument(
        "--with-source",
        type=float,
        metavar="MB",
        help="also pretrain on up to MB megabytes of the standard library's source code (all of it: about 8)",
    )
    parser.add_argument(
        "--dataset",
        help="pretrain on a text dataset by name (tinyshakespeare, the-verdict, tinystories), from "
        "--data-dir, the cache or the network; the fine-tunes keep the standard library's data",
    )
    tour = parser.add_argument_group("the tokenizer tour (--tour)")
    tour.add_argument("--tour", action="store_true", help="tokenizer and model basics, not the pipeline")
    tour.add_argument(
        "--data-dir",
        default=os.environ.get("SCRATCHLM_DATA_DIR"),
        help="a data folder: with --tour, its tinyshakespeare.txt; with --dataset, where to look first "
        "(default: $SCRATCHLM_DATA_DIR)",
    )
    tour.add_argument("--max-mb", type=float, default=8.0, help="with --tour: stdlib text in MB (default 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tour:
        from scratchlm.demo.tour import tour

        tour(Path(args.out), args.vocab_size or 4096, args.data_dir, args.max_mb)
        return 0
    from scratchlm.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=Path(args.out),
        minutes=args.minutes,
        stages=tuple(args.stage or STAGE_NAMES),
        vocab_size=args.vocab_size or 4096,
        interactive=sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI"),
        show_progress=not args.quiet,
        fresh=args.fresh,
        dataset=args.dataset,
        data_dir=args.data_dir,
        with_source=args.with_source,
    )
    started = time.perf_counter()
    run_demo(cfg)
    minutes = (time.perf_counter() - started) / 60
    print(f"\ndone in {minutes:.1f} min; everything is in {cfg.out}/ (demo.json)")
    return 0
