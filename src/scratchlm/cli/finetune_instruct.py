"""`scratchlm finetune instruct --model SPEC --data FILE --template alpaca|chatml|phi3 --out DIR`: instruction
fine-tuning, fully or with LoRA, then responses for the test split and their evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path

from scratchlm.cli.finetune import add_lora_arguments, lora_config
from scratchlm.errors import ScratchLMError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from scratchlm.data.templates import TEMPLATES

    parser.add_argument("--model", "-m", required=True, help="model directory, run directory or Hub name")
    parser.add_argument(
        "--data", "-d", required=True, help="Alpaca JSON/JSONL (instruction, input, output) or chat JSONL"
    )
    parser.add_argument("--val-data", help="validation file (default: split from --data)")
    parser.add_argument("--test-data", help="test file (default: split from --data)")
    parser.add_argument(
        "--split", default="0.85,0.05,0.10", help="train,val,test fractions of --data (the book's 85/5/10)"
    )
    parser.add_argument(
        "--split-seed", default="123", help="shuffle before splitting; 'none' keeps the file order"
    )
    parser.add_argument("--template", "-t", default="alpaca", choices=list(TEMPLATES))
    parser.add_argument("--out", "-o", required=True, help="the run directory")
    parser.add_argument(
        "--mask-prompt", action="store_true", help="learn only the responses (the prompt's targets are -100)"
    )
    parser.add_argument(
        "--allowed-max-length", type=int, default=None, help="truncate examples (default: the context)"
    )
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--batch-size", "-b", type=int, default=8)
    parser.add_argument("--grad-accum-steps", type=int, default=1)
    parser.add_argument(
        "--lr", type=float, default=None, help="learning rate (default 5e-5, the book's; 5e-4 with LoRA)"
    )
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--decay", choices=["constant", "cosine", "linear"], default="constant")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument(
        "--eval-interval", type=int, default=50, help="validate every N steps (and at the end)"
    )
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="per test response")
    parser.add_argument("--max-test", type=int, default=None, help="generate for at most N test examples")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also answer the test split with the base model, to score exact match and ROUGE-L before/after",
    )
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    add_lora_arguments(parser)
    add_judge_arguments(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def add_judge_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The LLM-judge options (`finetune instruct` and `eval judge`)."""
    group = parser.add_argument_group("LLM judge (any OpenAI-compatible endpoint: Ollama, vLLM, llama.cpp)")
    group.add_argument(
        "--judge-url", required=required, help="API base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)"
    )
    group.add_argument("--judge-model", required=required, help="the judge's model name, e.g. llama3")
    group.add_argument("--judge-key", default=None, help="API key (sent as a Bearer token)")
    group.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per request")
    group.add_argument("--judge-retries", type=int, default=3)


def judge_config(args: argparse.Namespace):
    """The JudgeConfig the options describe, or None without --judge-url."""
    if not args.judge_url:
        if args.judge_model:
            raise ScratchLMError("--judge-model needs --judge-url")
        return None
    if not args.judge_model:
        raise ScratchLMError("--judge-url needs --judge-model")
    from scratchlm.eval.judge import JudgeConfig

    return JudgeConfig(
        url=args.judge_url,
        model=args.judge_model,
        api_key=args.judge_key,
        timeout=args.judge_timeout,
        retries=args.judge_retries,
    )


def parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ScratchLMError(f"--split {text!r}: expected three fractions such as 0.85,0.05,0.10") from None
    if len(parts) != 3:
        raise ScratchLMError(f"--split {text!r}: expected three fractions such as 0.85,0.05,0.10")
    return parts  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    from scratchlm.config import GenerateConfig
    from scratchlm.finetune.instruct import InstructConfig, book_train_config, finetune_instruct, load_splits

    lora = lora_config(args)
    judge = judge_config(args)
    seed = None if args.split_seed.lower() == "none" else int(args.split_seed)
    splits = load_splits(args.data, args.val_data, args.test_data, parse_split(args.split), seed)
    lr = args.lr if args.lr is not None else (5e-4 if lora else 5e-5)
    train_cfg = book_train_config(
        batch_size=args.batch_size,
        grad_accum_steps=args.grad_accum_steps,
        lr=lr,
        min_lr=lr * 0.1,  # the floor of --decay cosine|linear
        warmup_steps=args.warmup_steps,
        decay=args.decay,
        weight_decay=args.weight_decay,
        eval_interval=args.eval_interval,
        log_interval=args.log_interval,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
    )
    cfg = InstructConfig(
        template=args.template,
        mask_prompt=args.mask_prompt,
        allowed_max_length=args.allowed_max_length,
        epochs=args.epochs,
        max_steps=args.max_steps,
        dropout=args.dropout,
        max_test=args.max_test,
        baseline=args.baseline,
        eval_batch_size=args.eval_batch_size,
        generate=GenerateConfig(max_new_tokens=args.max_new_tokens),
    )
    result = finetune_instruct(
        args.model,
        splits,
        args.out,
        cfg,
        train_cfg,
        lora=lora,
        judge=judge,
        show_progress=not args.quiet,
        command=getattr(args, "command_line", None),
    )
    print(summary(result))
    return 0


def summary(result: dict) -> str:
    """A few lines for the terminal; eval.json has everything."""
    n = result["examples"]
    lines = [
        f"examples: {n['train']} train, {n['val']} val, {n['test']} test"
        + (f" ({n['dropped_too_long']} too long, dropped)" if n["dropped_too_long"] else ""),
        f"trainable parameters: {result['trainable_parameters']['trainable']:,} "
        f"({result['trainable_parameters']['share']:.2%})",
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
