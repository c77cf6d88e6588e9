"""`scratchlm finetune classify --model SPEC --data FILE --out DIR`: fine-tune a text classifier (e.g. spam vs
ham) from a table of labelled texts, then print its test metrics. The work is
`scratchlm.finetune.classify.finetune_classifier`."""

from __future__ import annotations

import argparse

from scratchlm.cli.finetune import add_lora_arguments, lora_config
from scratchlm.errors import ScratchLMError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", "-m", required=True, help="model directory, run directory or Hub name (gpt2)"
    )
    parser.add_argument("--data", "-d", required=True, help="labelled texts: .tsv, .csv, .jsonl or .json")
    parser.add_argument(
        "--out", "-o", required=True, help="the run directory (the classifier goes to OUT/model)"
    )
    fields = parser.add_argument_group("data")
    fields.add_argument(
        "--text-field", default="text", help="column name or 0-based index (an index means: no header row)"
    )
    fields.add_argument("--label-field", default="label", help="column name or 0-based index")
    fields.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether a TSV/CSV starts with a header row (default: when a field is given by name)",
    )
    fields.add_argument("--labels", help="comma-separated class names in id order (default: sorted)")
    fields.add_argument(
        "--val", "--val-data", dest="val", help="validation table (default: split off --data)"
    )
    fields.add_argument("--test", "--test-data", dest="test", help="test table (default: split off --data)")
    fields.add_argument(
        "--split", default="0.7,0.1,0.2", help="train,val,test fractions, stratified per class"
    )
    fields.add_argument(
        "--balance",
        choices=["none", "undersample", "weights"],
        default="none",
        help="of the training split: undersample the larger classes (the book) or class-weight the loss",
    )
    fields.add_argument(
        "--max-length", type=int, default=None, help="truncate texts (default: longest training text)"
    )
    training = parser.add_argument_group("training")
    training.add_argument(
        "--train-layers",
        default=None,
        help="head | last-N (N blocks + final norm + head) | all | lora (default: last-1, or lora with "
        "--lora-rank)",
    )
    training.add_argument("--epochs", type=int, default=5)
    training.add_argument("--batch-size", "-b", type=int, default=8)
    training.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate (the book's 5e-5)")
    training.add_argument("--weight-decay", type=float, default=0.1)
    training.add_argument("--warmup-steps", type=int, default=0)
    training.add_argument("--decay", choices=["constant", "cosine", "linear"], default="constant")
    training.add_argument("--eval-interval", type=int, default=None, help="steps (default: once per epoch)")
    training.add_argument(
        "--select",
        choices=["accuracy", "macro_f1", "loss"],
        default="accuracy",
        help="the validation score that picks the weights kept (default accuracy)",
    )
    training.add_argument("--dropout", type=float, default=None, help="default: the model's")
    training.add_argument("--seed", type=int, default=123)
    training.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_lora_arguments(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ScratchLMError(f"--split: three comma-separated fractions train,val,test, got {text!r}")
    return parts


def run(args: argparse.Namespace) -> int:
    from scratchlm.finetune.classify import ClassifyConfig, finetune_classifier
    from scratchlm.finetune.classify_metrics import format_report

    lora = lora_config(args)
    cfg = ClassifyConfig(
        model=args.model,
        data=args.data,
        val=args.val,
        test=args.test,
        text_field=args.text_field,
        label_field=args.label_field,
        header=args.header,
        labels=tuple(x.strip() for x in args.labels.split(",")) if args.labels else None,
        split=parse_split(args.split),
        balance=args.balance,
        max_length=args.max_length,
        train_layers=args.train_layers or ("lora" if lora is not None else "last-1"),
        lora=lora,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        decay=args.decay,
        eval_interval=args.eval_interval,
        select=args.select,
        dropout=args.dropout,
        seed=args.seed,
        device=args.device,
    )
    command = getattr(args, "command_line", None)
    result = finetune_classifier(cfg, args.out, show_progress=not args.quiet, command=command)
    p = result["parameters"]
    examples = ", ".join(f"{name} {sum(c.values()):,}" for name, c in result["examples"].items())
    print(f"examples: {examples}; max length {result['max_length']} tokens")
    print(f"trained {p['trainable']:,} of {p['total']:,} parameters ({p['share']:.2%}, {cfg.train_layers})")
    val = result["val"]
    print(
        f"best validation: step {result['best']['step']}, accuracy {val['accuracy']:.2%}, "
        f"loss {val['loss']:.4f}; {result['seconds']['total']:.1f} s in all"
    )
    print("\ntest split:")
    print(format_report(result["test"]))
    print(
        f"\nwrote {args.out}: report.html, model/, eval.json, metrics.jsonl, confusion.png, curves.png, "
        "labels.json"
    )
    return 0
