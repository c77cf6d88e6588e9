"""Entry point and the table of subcommands. Errors a user caused print one line and exit 2.

Only the chosen subcommand's module is imported, so `scratchlm tokenizer …` starts without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence

from scratchlm import __version__
from scratchlm.errors import ScratchLMError

# name -> (module with add_arguments/run, one-line help). Groups (like `tokenizer`) add their own verbs.
COMMANDS = {
    "tokenizer": (
        "scratchlm.cli.tokenizer",
        "train, encode, decode, inspect tokenizers (train|encode|decode|stats|show)",
    ),
    "data": (
        "scratchlm.cli.data",
        "token shards for training, and the sliding-window demo (prepare|info|windows)",
    ),
    "pretrain": ("scratchlm.cli.pretrain", "train a GPT from scratch (or continue one) from a YAML config"),
    "generate": (
        "scratchlm.cli.generate",
        "continue a prompt with a model (a directory or a Hub name such as gpt2)",
    ),
    "finetune": (
        "scratchlm.cli.finetune",
        "fine-tune a model into a classifier or an instruction follower, fully or with LoRA",
    ),
    "classify": ("scratchlm.cli.classify", "label texts with a fine-tuned classifier (one text or a file)"),
    "eval": ("scratchlm.cli.eval", "score generated responses: an LLM judge, exact match, ROUGE-L"),
    "chat": ("scratchlm.cli.chat", "talk to a model in the terminal (--inspect shows token probabilities)"),
    "serve": (
        "scratchlm.cli.serve",
        "an OpenAI-compatible API server with continuous batching, and a chat page",
    ),
    "export": ("scratchlm.cli.export", "write a model directory in Hugging Face's format (or ours)"),
    "model": (
        "scratchlm.cli.model",
        "what a model is: architecture, parameters, KV-cache memory, FLOPs (info)",
    ),
    "report": ("scratchlm.cli.report", "(re)write a run directory's report.html and report.md"),
    "demo": (
        "scratchlm.cli.demo",
        "the main job on offline data: a tokenizer trained and shown, windows, a tiny GPT",
    ),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="GPT-style language models built from scratch."
    )
    parser.add_argument("--version", action="version", version=f"scratchlm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        if name == chosen:
            importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown and getattr(args, "run_kind", None):  # a run command explains a mistyped setting
            from scratchlm.cli.run_args import explain_unknown

            raise ScratchLMError(explain_unknown(args.run_kind, unknown))
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.command_line = "scratchlm " + shlex.join(argv)  # what a run records, to be reproduced
        return args.run(args) or 0
    except ScratchLMError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a path the user gave cannot be read or written
        if isinstance(exc, BrokenPipeError):  # e.g. `scratchlm tokenizer encode ... | head`
            sys.stderr.close()
            return 0
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        print("scratchlm: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"scratchlm: error: {message}", file=sys.stderr)
    return 2
