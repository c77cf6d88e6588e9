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
            verbs.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        )
