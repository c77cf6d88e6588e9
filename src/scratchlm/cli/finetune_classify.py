"""`scratchlm finetune classify --model SPEC --data FILE --out DIR [--section.key value ...]`: fine-tune a
text classifier (e.g. spam vs ham) from a table of labelled texts, then print its test metrics. The work is
`scratchlm.finetune.classify.finetune_classifier`; the settings are `scratchlm.config.book_classify`'s."""

from __future__ import annotations

import argparse

from scratchlm.cli.run_args import add_run_arguments, run_finetune


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, "classify")
    parser.epilog = (
        "Defaults are the book's chapter 6 (scratchlm.config.book_classify). Every setting is --section.key "
        "(--classify.header false); --text-field 1 is --classify.text_field 1; --lora-rank 8 trains LoRA "
        "adapters and the head."
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scratchlm.finetune.classify import finetune_classifier
    from scratchlm.finetune.classify_metrics import format_report

    cfg, result = run_finetune(args, "classify", finetune_classifier)
    if result is None:
        return 0
    p = result["parameters"]
    examples = ", ".join(f"{name} {sum(c.values()):,}" for name, c in result["examples"].items())
    print(f"examples: {examples}; max length {result['max_length']} tokens")
    layers = cfg.classify.train_layers
    print(f"trained {p['trainable']:,} of {p['total']:,} parameters ({p['share']:.2%}, {layers})")
    val = result["val"]
    print(
        f"best validation: step {result['best']['step']}, accuracy {val['accuracy']:.2%}, "
        f"loss {val['loss']:.4f}; {result['seconds']['train']:.1f} s of training"
    )
    print("\ntest split:")
    print(format_report(result["test"]))
    print(
        f"\nwrote {args.out}: report.html, model/, eval.json, metrics.jsonl, confusion.png, curves.png, "
        "labels.json"
    )
    return 0
