"""`scratchlm export`: write a model directory in Hugging Face's format (or ours), tokenizer beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchlm.formats.model_files import load_model, save_model
from scratchlm.formats.tokenizer_files import save_tokenizer
from scratchlm.interop.hf import save_hf_gpt2
from scratchlm.tokenizer import Tokenizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model directory, or a Hub name such as gpt2")
    parser.add_argument("--out", "-o", required=True, help="output directory")
    parser.add_argument("--format", choices=["hf", "scratchlm"], default="hf")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, tokenizer = load_model(args.model)
    out = Path(args.out)
    if args.format == "hf":
        eos_id = tokenizer.eot_id if tokenizer is not None else None
        save_hf_gpt2(model, out, eos_id=eos_id)
        if isinstance(tokenizer, Tokenizer):
            save_tokenizer(tokenizer, out)
    else:
        save_model(model, out, tokenizer)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"{args.model} -> {out}/ ({args.format}): {files}")
    return 0
