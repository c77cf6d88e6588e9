"""The text a subcommand reads: a positional argument, `--file`, or stdin, always checked as UTF-8.

Shared by `tokenizer encode|show` and `data windows`; knows nothing of tokenizers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer.tokenizer import clean_surrogates


def add_text_flags(p: argparse.ArgumentParser) -> None:
    """Add the optional positional `text` and `--file/-f` that `read_text` reads."""
    p.add_argument("text", nargs="?", help="the text (default: --file or stdin)")
    p.add_argument("--file", "-f", help="read the text from a file")


def read_text(args: argparse.Namespace) -> str:
    """The text from the argument, else the file, else stdin (when it is not a terminal)."""
    if args.text is not None and args.file:
        raise ScratchLMError("give the text or --file, not both")
    if args.text is not None:
        return clean_surrogates(args.text)  # undecodable bytes in argv arrive as lone surrogates
    if args.file:
        path = Path(args.file)
        if path.is_dir():
            raise ScratchLMError(f"{path}: is a directory")
        if not path.is_file():
            raise ScratchLMError(f"{path}: no such file")
        return _utf8(path.read_bytes(), str(path))
    if sys.stdin is None or sys.stdin.isatty():
        raise ScratchLMError("no text: give it as an argument, with --file, or on stdin")
    return _utf8(sys.stdin.buffer.read(), "stdin")


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScratchLMError(f"{where}: not valid UTF-8 (byte offset {exc.start})") from None
