"""`scratchlm pretrain --config FILE.yaml [--section.key value ...] --out DIR [--resume]`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from scratchlm.config import RunConfig
from scratchlm.errors import ScratchLMError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="a YAML file with model/data/train sections (see configs/)")
    parser.add_argument("--out", "-o", required=True, help="the run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.epilog = (
        "Any setting can be overridden as --section.key value, e.g. --train.max_steps 200 "
        "--model.preset tiny --data.inputs a.txt b.txt"
    )
    parser.set_defaults(run=run, accepts_overrides=True)


def parse_overrides(items: list[str]) -> dict:
    """Overrides as a nested dict, values read as YAML scalars.

    >>> parse_overrides(["--train.lr", "1e-3", "--data.inputs", "a", "b"])
    {'train': {'lr': '1e-3'}, 'data': {'inputs': ['a', 'b']}}
    """
    tree: dict = {}
    key = None
    values: list[str] = []

    def flush() -> None:
        if key is None:
            return
        if not values:
            raise ScratchLMError(f"--{key} needs a value")
        section, _, name = key.partition(".")
        if not name:
            raise ScratchLMError(
                f"--{key}: overrides are --section.key value (section: model, data, train, lora)"
            )
        parsed = [yaml.safe_load(v) for v in values]
        tree.setdefault(section, {})[name] = parsed if len(parsed) > 1 or name == "inputs" else parsed[0]

    for item in items:
        if item.startswith("--"):
            flush()
            key, values = item[2:], []
        elif key is None:
            raise ScratchLMError(f"unexpected argument {item!r}")
        else:
            values.append(item)
    flush()
    return tree


def load_config(path: str | None, overrides: dict) -> RunConfig:
    data: dict = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ScratchLMError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            reason = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise ScratchLMError(f"{path}: not valid YAML{where}: {reason}") from None
        if not isinstance(data, dict):
            raise ScratchLMError(f"{path}: expected sections model/data/train")
    for section, values in overrides.items():
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ScratchLMError(f"config section {section!r} must be a mapping")
        data[section].update(values)
    return RunConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from scratchlm.train.pretrain import pretrain

    cfg = load_config(args.config, parse_overrides(args.overrides))
    command = getattr(args, "command_line", None)
    world, local = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if command and world > 1:  # under torchrun: the report's command must start the same processes
        command = f"torchrun --nnodes {max(1, world // local)} --nproc_per_node {local} -m {command}"
    state = pretrain(cfg, args.out, resume=args.resume, show_progress=not args.quiet, command=command)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return 0
    print(
        f"stopped at step {state.step:,} of {cfg.train.max_steps:,}; run directory: {args.out}/ (report.html)"
    )
    return 0
