"""`scratchlm finetune instruct --model SPEC --data FILE --out DIR [--section.key value ...]`: instruction
fine-tuning, fully or with LoRA, then responses for the test split and their evaluation. The settings are
`scratchlm.config.book_instruct`'s; the work is `scratchlm.finetune.instruct.finetune_instruct`."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchlm.cli.run_args import add_run_arguments, run_finetune


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, "instruct")
    parser.epilog = (
        "Defaults are the book's chapter 7 (scratchlm.config.book_instruct): lr 5e-5, or 5e-4 with "
        "--lora-rank. Examples: --instruct.split 0.8,0.1,0.1 --instruct.max_length 512 --lora.alpha 32."
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scratchlm.finetune.instruct import finetune_instruct

    _, result = run_finetune(args, "instruct", finetune_instruct)
    if result is not None:
        print(summary(result))
    return 0


def summary(result: dict) -> str:
    """A few lines for the terminal; eval.json has everything."""
    n = result["examples"]
    lines = [
        f"examples: {n['train']} train, {n['val']} val, {n['test']} test"
        + (f" ({n['dropped_too_long']} too long, dropped)" if n["dropped_too_long"] else ""),
        f"trainable parameters: {result['parameters']['trainable']:,} ({result['parameters']['share']:.2%})",
        f"best val loss {result['best_val_loss']:.4f} at step {result['best_step']} of {result['steps']}",
    ]
    if "test_response_ppl" in result:
        ppl = result["test_response_ppl"]
        lines.append(f"test response perplexity: {ppl['before']:.2f} before, {ppl['after']:.2f} after")
        lines.append(
            f"exact match {result['exact_match']:.1%}, "
            f"first-clause match {result['first_clause_match']:.1%}, "
            f"ROUGE-L {result['rouge_l']:.3f} over {result['responses']} responses"
        )
        if "before" in result:
            before = result["before"]
            lines.append(
                f"the base model on the same prompts: exact match {before['exact_match']:.1%}, "
                f"first-clause match {before['first_clause_match']:.1%}, ROUGE-L {before['rouge_l']:.3f}"
            )
    if result.get("judge"):
        judge = result["judge"]
        mean = "n/a" if judge["mean_score"] is None else f"{judge['mean_score']:.1f}"
        lines.append(f"judge {judge['judge_model']}: mean score {mean} ({judge['scored']} scored)")
    out = Path(result["model_dir"]).parent
    lines.append(
        f"run directory: {out}/ (report.html, model/, responses.json, eval.json, metrics.jsonl, loss.png)"
    )
    return "\n".join(lines)
