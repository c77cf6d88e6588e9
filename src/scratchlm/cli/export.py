"""`scratchlm export`: write a model directory in Hugging Face's format (or ours), tokenizer beside it. Every
family: GPT-2's format for a GPT-2-shaped model, else Llama's, Mistral's, Qwen2's, Qwen3's, Gemma 3's or
Olmo's, whichever describes the model exactly (`scratchlm.interop.hf_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchlm.formats.model_files import export_hf, load_model, save_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="model directory, or a Hub name such as gpt2")
    parser.add_argument("--out", "-o", required=True, help="output directory")
    parser.add_argument("--format", choices=["hf", "scratchlm"], default="hf")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, tokenizer = load_model(args.model)
    out = Path(args.out)
    if args.format == "hf":
        export_hf(model, out, tokenizer)
    else:
        save_model(model, out, tokenizer)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"{args.model} -> {out}/ ({args.format}): {files}")
    return 0
