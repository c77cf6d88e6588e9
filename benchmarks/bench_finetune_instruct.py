"""Instruction fine-tuning on the book's instruction data (issue 5, bench (b)): response perplexity before and
after, exact match, ROUGE-L and wall time, fully and with LoRA, with and without prompt masking.

    python -m benchmarks.bench_finetune_instruct [--data-dir ../shared/data] [--model SPEC]
                                                 [--pretrain-minutes 4] [--epochs 2] [--quick] [--threads 2]

The base model is `--model` (a model directory, a pretrain run or a Hub name), or else a small GPT
pretrained here from scratch on CPU: a byte-level BPE (vocab 2048) trained on tiny Shakespeare, The Verdict
and the instruction data's *training* split, then a 4-layer, 192-wide GPT (context 256) trained on
Shakespeare and The Verdict only, for `--pretrain-minutes`. It has never seen an instruction.

Then four fine-tunes of that same base, each through `scratchlm.finetune.instruct.finetune_instruct` (what
`scratchlm finetune instruct` runs): the Alpaca template, the book's seeded 85/5/10 split of the 990 records,
`--epochs` epochs of batch 8 (AdamW, 10 warmup steps, cosine to a tenth: lr 5e-4 for full fine-tuning,
2e-3 for LoRA rank 16, alpha 32, on qkv, out_proj, ff_in, ff_out; a small model trained briefly from scratch
wants more than the book's 5e-5 for GPT-2 medium), best validation weights kept, greedy responses (up to
128 new tokens) for the 99 test records. Response perplexity is exp(mean NLL per reference-response token
given its prompt); ROUGE-L is the LCS F1 over case-folded words. Prints a table and appends one JSON line
to benchmarks/results/bench_finetune_instruct.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, append_result, print_table, run_info, wait_for_quiet
from scratchlm.config import GenerateConfig, ModelConfig, TrainConfig
from scratchlm.data.shards import WindowSampler
from scratchlm.finetune.instruct import InstructConfig, finetune_instruct, load_splits
from scratchlm.formats.model_files import save_model
from scratchlm.model.gpt import GPT
from scratchlm.model.lora import LoRAConfig
from scratchlm.tokenizer.train import train_bpe
from scratchlm.train.loop import train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer
from scratchlm.train.perf import keep_heap

DATA_FILE = "instruction-data.json"
PRETRAIN_FILES = ("tinyshakespeare.txt", "the-verdict.txt")
RESULTS = ROOT / "benchmarks" / "results" / "bench_finetune_instruct.jsonl"
BASE_MODEL = dict(context_length=256, emb_dim=192, n_heads=6, n_layers=4, dropout=0.0)
PRETRAIN = dict(batch_size=16, lr=2e-3, min_lr=1e-4, warmup_steps=50, beta2=0.99, weight_decay=0.1)
LORA = LoRAConfig(rank=16, alpha=32, targets=("qkv", "out_proj", "ff_in", "ff_out"))
# name -> (LoRA or None, mask the prompt?, learning rate)
VARIANTS = {
    "full": (None, False, 5e-4),
    "full, prompt masked": (None, True, 5e-4),
    "lora r16": (LORA, False, 2e-3),
    "lora r16, prompt masked": (LORA, True, 2e-3),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("SCRATCHLM_DATA_DIR", str(ROOT.parent / "shared/data"))
    )
    parser.add_argument("--model", help="fine-tune this model instead of pretraining one here")
    parser.add_argument("--pretrain-minutes", type=float, default=4.0)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds of pretraining, few steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--max-wait", type=float, default=60.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--keep", help="keep the run directories here (default: a temporary directory)")
    parser.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results")
    args = parser.parse_args()

    data_dir = Path(args.data_dir)
    if not (data_dir / DATA_FILE).is_file():
        raise SystemExit(f"{data_dir / DATA_FILE} not found: pass --data-dir")
    torch.set_num_threads(args.threads)
    keep_heap()
    quiet = wait_for_quiet(args.max_wait)
    splits = load_splits(data_dir / DATA_FILE, seed=args.seed)
    print(f"instruction data: {len(splits.train)} train, {len(splits.val)} val, {len(splits.test)} test")
    if args.quick:
        args.pretrain_minutes, args.epochs = min(args.pretrain_minutes, 0.2), min(args.epochs, 0.1)
        splits.test = splits.test[:16]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        pretrain_info = None
        base = args.model
        if base is None:
            base, pretrain_info = pretrain_base(
                data_dir, splits, root / "base", args.pretrain_minutes, args.seed
            )
        runs = {}
        for name in args.variants:
            runs[name] = finetune_variant(name, base, splits, root / slug(name), args)
    total_s = time.perf_counter() - started

    rows = [
        ["variant", "trainable", "train s", "gen s", "best val", "ppl before", "ppl after", "EM", "ROUGE-L"]
    ]
    for name, r in runs.items():
        rows.append(
            [
                name,
                f"{r['parameters']['share']:.1%}",
                r["train_seconds"],
                r["generate_seconds"],
                r["best_val_loss"],
                r["test_response_ppl"]["before"],
                r["test_response_ppl"]["after"],
                f"{r['exact_match']:.1%}",
                r["rouge_l"],
            ]
        )
    note = (
        f"{len(splits.test)} test responses each, greedy, ≤ {args.max_new_tokens} new tokens; "
        f"total wall time {total_s / 60:.1f} min on {args.threads} threads"
    )
    print_table("instruction fine-tuning: response perplexity and ROUGE-L on the test split", rows, note, 2)
    if not args.no_save:
        record = run_info("bench_finetune_instruct", ["torch"])
        record["config"] = {
            "quick": args.quick,
            "model": args.model,
            "pretrain": pretrain_info,
            "epochs": args.epochs,
            "max_new_tokens": args.max_new_tokens,
            "threads": args.threads,
            "seed": args.seed,
            "quiet": quiet,
        }
        record["runs"] = runs
        record["total_seconds"] = round(total_s, 1)
        append_result(RESULTS, record)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def pretrain_base(data_dir: Path, splits, out: Path, minutes: float, seed: int) -> tuple[Path, dict]:
    """A small GPT trained from scratch for `minutes` on Shakespeare + The Verdict, saved as a model dir."""
    t0 = time.perf_counter()
    text = "\n".join((data_dir / name).read_text(encoding="utf-8") for name in PRETRAIN_FILES)
    instruction_text = "\n".join(m["content"] + " " + m.get("input", "") for c in splits.train for m in c)
    tokenizer = train_bpe([text, instruction_text], vocab_size=2048)
    ids = np.array(tokenizer.encode_ordinary(text), dtype=np.int64)
    cfg = ModelConfig(vocab_size=tokenizer.vocab_size, **BASE_MODEL)
    torch.manual_seed(seed)
    model = GPT(cfg)
    sampler = WindowSampler([ids], cfg.context_length, seed)
    probe = TrainConfig(max_steps=10, seed=seed, **PRETRAIN)  # warmup steps: the same lr whatever max_steps
    optimizer = build_optimizer(model, probe)
    seconds: list[float] = []
    state = train(
        model, sampler, next_token_loss, optimizer, probe, on_step=lambda s, r: seconds.append(r.seconds)
    )
    step_s = float(np.median(seconds[2:]))
    budget = minutes * 60 - (time.perf_counter() - t0)
    train_cfg = TrainConfig(
        max_steps=max(probe.warmup_steps + 1, int(budget / step_s)), seed=seed, **PRETRAIN
    )
    print(f"  pretraining: {step_s * 1000:.0f} ms/step → {train_cfg.max_steps} steps", flush=True)

    def on_step(state, result):
        if state.step % 200 == 0:
            print(f"  pretrain step {state.step}: loss {result.loss:.3f}", flush=True)

    deadline = t0 + minutes * 60  # the pace can change (a busy machine): the budget holds in any case
    state = train(
        model,
        sampler,
        next_token_loss,
        optimizer,
        train_cfg,
        state=state,
        on_step=on_step,
        should_stop=lambda: time.perf_counter() > deadline,
    )
    save_model(model.eval(), out, tokenizer)
    info = {
        "model": cfg.to_dict(),
        "train": PRETRAIN,
        "steps": state.step,
        "tokens": state.tokens,
        "corpus_tokens": len(ids),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"base model: {json.dumps(info)}", flush=True)
    return out, info


def finetune_variant(name: str, base, splits, out: Path, args) -> dict:
    lora, mask_prompt, lr = VARIANTS[name]
    cfg = InstructConfig(
        template="alpaca",
        mask_prompt=mask_prompt,
        epochs=args.epochs,
        generate=GenerateConfig(max_new_tokens=args.max_new_tokens),
        eval_batch_size=16,
    )
    train_cfg = TrainConfig(
        lr=lr, min_lr=lr / 10, warmup_steps=10, decay="cosine", batch_size=8, eval_interval=25, seed=args.seed
    )
    print(f"\n[{name}] fine-tuning", flush=True)
    result = finetune_instruct(base, splits, out, cfg, train_cfg, lora=lora, show_progress=False)
    responses = json.loads((out / "responses.json").read_text(encoding="utf-8"))
    result["samples"] = responses[:3]
    ppl = result["test_response_ppl"]
    print(
        f"[{name}] {result['train_seconds']:.0f} s; ppl {ppl['before']:.1f} → {ppl['after']:.1f}; "
        f"ROUGE-L {result['rouge_l']:.3f}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
