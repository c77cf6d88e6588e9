"""Entry point and the table of subcommands. Errors a user caused print one line and exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scratchlm import __version__
from scratchlm.cli import demo, tokenizer
from scratchlm.errors import ScratchLMError

# name -> (module with add_arguments/run, one-line help). Groups (like `tokenizer`) add their own verbs.
COMMANDS = {
    "tokenizer": (tokenizer, "train, encode, decode, inspect tokenizers (train|encode|decode|stats|show)"),
    "demo": (demo, "the main job on offline data: train a tokenizer and show what it does"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="GPT-style language models built from scratch."
    )
    parser.add_argument("--version", action="version", version=f"scratchlm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ScratchLMError as exc:
        print(f"scratchlm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scratchlm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `scratchlm tokenizer encode ... | head`
        sys.stderr.close()
        return 0
