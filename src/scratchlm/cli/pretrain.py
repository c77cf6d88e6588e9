"""`scratchlm pretrain --config FILE.yaml [--section.key value ...] --out DIR [--resume]`."""

from __future__ import annotations

import argparse
import os

from scratchlm.cli.run_args import add_run_arguments, run_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, "pretrain")
    parser.epilog = (
        "Any setting can be given as --section.key value, e.g. --train.max_steps 200 "
        "--model.preset tiny --data.inputs a.txt b.txt"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scratchlm.report import write_report_safely
    from scratchlm.train.pretrain import pretrain

    cfg = run_config(args, "pretrain")
    outcome = pretrain(cfg, args.out, resume=args.resume, show_progress=not args.quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return 0
    command = args.command_line
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if world > 1:  # the report's command must start the same processes
        command = f"torchrun --nnodes {max(1, world // local)} --nproc_per_node {local} -m {command}"
    write_report_safely(args.out, command)
    state = outcome.state
    how = "stopped by a signal (--resume continues it)" if outcome.stopped else "done"
    steps = outcome.max_steps or cfg.train.max_steps
    budget = f" (the steps that fit {cfg.train.max_minutes:g} min)" if cfg.train.max_minutes else ""
    print(f"{how} at step {state.step:,} of {steps:,}{budget}; run directory: {args.out}/ (report.html)")
    return 0
