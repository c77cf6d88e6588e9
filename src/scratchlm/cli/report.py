"""`scratchlm report RUN_DIR`: (re)write report.md and report.html for a run directory, finished or not.
The work is `scratchlm.report.write_report`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a pretraining or fine-tuning run directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scratchlm.report import write_report

    md, page = write_report(args.run_dir)
    print(f"wrote {page} (open it in a browser) and {md}")
    return 0
