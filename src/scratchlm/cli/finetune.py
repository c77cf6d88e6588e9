"""`scratchlm finetune classify|instruct …`: turn a pretrained model (ours, a run directory, or GPT-2) into a
classifier or an instruction follower, fully or with LoRA. Each verb lives in its own module."""

from __future__ import annotations

import argparse
import importlib

VERBS = {
    "classify": ("scratchlm.cli.finetune_classify", "fine-tune a text classifier (e.g. spam vs ham)"),
    "instruct": ("scratchlm.cli.finetune_instruct", "instruction fine-tuning (Alpaca or chat data)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (module, help_text) in VERBS.items():
        importlib.import_module(module).add_arguments(
            verbs.add_parser(name, help=help_text, description=help_text)
        )


def add_lora_arguments(parser: argparse.ArgumentParser) -> None:
    """The LoRA options both fine-tunes share (LoRA is on when --lora-rank is given)."""
    group = parser.add_argument_group("LoRA (PEFT-compatible adapters)")
    group.add_argument("--lora-rank", type=int, default=None, help="train a rank-R LoRA adapter, base frozen")
    group.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: 2 × rank)")
    group.add_argument("--lora-dropout", type=float, default=0.0)
    group.add_argument(
        "--lora-targets",
        default="qkv,out_proj",
        help="comma-separated: qkv, out_proj, ff_in, ff_out, head (default qkv,out_proj)",
    )
    group.add_argument("--rslora", action="store_true", help="scale by alpha/sqrt(rank) (rank-stabilised)")


def lora_config(args: argparse.Namespace):
    """The LoRAConfig the options describe, or None without --lora-rank."""
    if args.lora_rank is None:
        return None
    from scratchlm.finetune.lora import LoRAConfig

    alpha = args.lora_alpha if args.lora_alpha is not None else 2.0 * args.lora_rank
    return LoRAConfig(
        rank=args.lora_rank,
        alpha=alpha,
        dropout=args.lora_dropout,
        targets=args.lora_targets,
        rslora=args.rslora,
    )
