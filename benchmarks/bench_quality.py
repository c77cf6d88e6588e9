"""The CPU speedrun: what a fixed CPU budget buys, in val bits per byte, recipe against recipe.

    python -m benchmarks.bench_quality [--data-dir ../shared/data] [--text tinyshakespeare|stdlib]
                                       [--minutes 5] [--seeds 3] [--nanogpt DIR] [--recipes ...]
                                       [--set shipped.train.lr=0.003 ...] [--threads 2] [--no-plot]
    python -m benchmarks.bench_quality --ablate --minutes 1 --seeds 1 [--parts 'value embeddings' ...]

Every recipe trains on the same text and split (the last 10% of the characters is validation, as nanoGPT
does), seed by seed, side by side in one invocation, with the one training loop
(`scratchlm.train.loop.train`):

- `nanogpt-budget`: the nanoGPT README's CPU recipe for shakespeare_char (character level, 4 layers, 4 heads,
  emb 128, context 64, batch 12, lr 1e-3 → 1e-4 cosine, 100 warmup steps, beta2 0.99, dropout 0), its
  schedule stretched to the budget. Tiny Shakespeare is ASCII, so our byte tokenizer with no merges *is* a
  character tokenizer (vocab 256 instead of 65: a slightly larger output layer, the same predictions).
- `nanogpt`: the same as published (max_iters 2000, whatever the time).
- `nanogpt-checkout` (with `--nanogpt DIR`, a nanoGPT checkout): nanoGPT's *own* train.py with that recipe,
  its schedule sized by its own measured step time, its checkpoint scored on the same windows
  (benchmarks/nanogpt_peer.py).
- `ours`: the recipe `make demo` uses (a byte-level BPE trained on the training part, a GPT-2-style model
  sized for the budget, AdamW).
- `modern`: the speedrun's small-model recipe (preset modern-cpu) with Muon, as first measured.
- `shipped` (default with `nanogpt-budget`): configs/cpu-5min.yaml, the recipe `scratchlm demo` pretrains
  with, read from the file.

`--ablate` runs the ablation table instead: the shipped recipe, each of its parts set back to GPT-2's alone,
a base with every part set back (a GPT-2 of the same size, tokenizer and schedule) and each part added to it
alone (`PARTS`), each scored once at its end. A part the shipped recipe leaves out (value embeddings) is
added to it instead. `--parts` runs only the named parts' rows.

Each budgeted recipe gets the same *training* time (the evaluations along the way are not counted): a short
calibration measures its step time, then the schedule is sized to the budget (`max_steps`), and a deadline
stops it in any case. The score is the loss over every validation window (stride = context), converted to
bits per byte of the validation text, so tokenizers are compared fairly; per recipe the mean ± sd over the
seeds. The first seed's curves go to docs/img/quality-shakespeare.png and everything to
benchmarks/results/bench_quality.jsonl. `--text stdlib` is the second text (3.9 MB: the standard library's
source code, then Python's language reference and docstrings, offline).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, append_result, print_table, run_info, wait_for_quiet
from scratchlm.config import ModelConfig, TrainConfig, from_dict, preset
from scratchlm.data.shards import WindowSampler
from scratchlm.model.gpt import GPT
from scratchlm.model.sizing import flops_per_token
from scratchlm.precision import autocast, resolve_precision
from scratchlm.tokenizer.train import train_bpe
from scratchlm.train.loop import evaluate, train
from scratchlm.train.losses import next_token_loss
from scratchlm.train.optim import build_optimizer
from scratchlm.train.perf import keep_heap, step_seconds

DATA_FILE = "tinyshakespeare.txt"
CURVE_POINTS = 12  # evaluations along each run, each over the whole validation part

NANOGPT = {
    "vocab": 256,  # bytes, no merges: characters for ASCII text
    "model": dict(context_length=64, emb_dim=128, n_heads=4, n_layers=4, dropout=0.0),
    "train": dict(batch_size=12, lr=1e-3, min_lr=1e-4, warmup_steps=100, beta2=0.99, weight_decay=0.1),
}
RECIPES: dict[str, dict] = {
    # As published: max_iters = lr_decay_iters = 2000, whatever the time (about 1 min here).
    "nanogpt": {"about": "nanoGPT README CPU recipe as published (2000 steps)", "max_steps": 2000, **NANOGPT},
    # The same recipe given the whole budget: its schedule stretched to the steps the budget allows.
    "nanogpt-budget": {"about": "nanoGPT README CPU recipe, schedule sized to the budget", **NANOGPT},
    "ours": {
        "about": "byte-level BPE 1024, wider model, longer context",
        "vocab": 1024,
        "model": dict(context_length=128, emb_dim=192, n_heads=6, n_layers=4, dropout=0.0),
        "train": dict(batch_size=16, lr=2e-3, min_lr=1e-4, warmup_steps=50, beta2=0.99, weight_decay=0.1),
    },
    # The speedrun's small-model recipe (preset modern-cpu: rotary, RMSNorm, QK-norm, ReLU², untied head,
    # zero-init projections, soft-capped logits) with Muon; not tuned for the CPU yet (issue 27, step 4).
    "modern": {
        "about": "preset modern-cpu + Muon, byte-level BPE 1024",
        "vocab": 1024,
        "preset": "modern-cpu",
        "model": {},
        "train": dict(batch_size=16, lr=2e-3, min_lr=1e-4, warmup_steps=50, beta2=0.99, weight_decay=0.1)
        | dict(optimizer="muon", muon_lr=0.02),
    },
}
SHIPPED_YAML = ROOT / "configs/cpu-5min.yaml"


def shipped_recipe(path: Path = SHIPPED_YAML) -> dict:
    """The recipe of configs/cpu-5min.yaml, as `scratchlm pretrain -c` runs it (its time budget is the
    benchmark's: every recipe here is given the same minutes)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    model = dict(data["model"])
    bookkeeping = {"max_minutes", "max_steps", "seed", "device", "eval_batches", "keep_last"}
    train_keys = {k for k in TrainConfig.__dataclass_fields__ if k not in bookkeeping and "interval" not in k}
    return {
        "about": f"{path.name}: {model.get('preset', 'custom')} + {data['train'].get('optimizer', 'adamw')}",
        "vocab": model.pop("vocab_size"),
        "preset": model.pop("preset"),
        "model": model,
        "train": {k: v for k, v in data["train"].items() if k in train_keys},
    }


RECIPES["shipped"] = shipped_recipe()
DEFAULT_RECIPES = ["nanogpt-budget", "shipped"]

# The ablation (--ablate): each part of the shipped recipe as (its setting, GPT-2's). "without X" is the
# shipped recipe with X alone set back to GPT-2's; "gpt2 + X" is the shipped recipe with *every* part set
# back (a GPT-2 of the same size, tokenizer and schedule: the "base" row) but X.
PARTS: dict[str, tuple[dict, dict]] = {
    "rotary": ({"model": {"positions": "rope"}}, {"model": {"positions": "learned"}}),
    "rmsnorm": ({"model": {"norm": "rmsnorm"}}, {"model": {"norm": "layernorm"}}),
    "qk-norm": ({"model": {"qk_norm": True}}, {"model": {"qk_norm": False}}),
    "relu2": ({"model": {"mlp": "relu2"}}, {"model": {"mlp": "gelu"}}),
    "untied head": ({"model": {"tie_embeddings": False}}, {"model": {"tie_embeddings": True}}),
    "zero-init": ({"model": {"zero_init_residual": True}}, {"model": {"zero_init_residual": False}}),
    "soft-cap": ({"model": {"logit_softcap": 15.0}}, {"model": {"logit_softcap": None}}),
    "no bias": ({"model": {"bias": False}}, {"model": {"bias": True}}),
    "muon": ({"train": {"optimizer": "muon"}}, {"train": {"optimizer": "adamw"}}),
    "bf16 if faster": ({"train": {"precision": "fastest"}}, {"train": {"precision": "fp32"}}),
    "value embeddings": ({"model": {"value_embeddings": 1}}, {"model": {"value_embeddings": 0}}),
}


def ablation_recipes(shipped: dict) -> dict[str, dict]:
    """{name: recipe}: the shipped recipe, the base (every part set back), each part removed alone from
    the shipped and each added alone to the base. A part the shipped recipe leaves out (value embeddings)
    is added to it instead ("shipped + part"), and to the base."""

    def merged(recipe: dict, *changes: dict) -> dict:
        out = copy.deepcopy(recipe)
        for change in changes:
            for section, values in change.items():
                out[section] = {**out[section], **values}
        return out

    def uses(on: dict) -> bool:
        model = preset(shipped["preset"], vocab_size=shipped["vocab"], **shipped["model"])
        train = from_dict(TrainConfig, shipped["train"])
        return all(
            getattr(model if section == "model" else train, k) == v for section, values in on.items()
            for k, v in values.items()
        )  # fmt: skip

    parts = dict(PARTS)
    if shipped["model"].get("dropout"):  # GPT-2 trained with 0.1; nanoGPT (CPU) and the speedrun use 0
        parts["dropout"] = ({"model": {"dropout": shipped["model"]["dropout"]}}, {"model": {"dropout": 0.0}})
    used = {name: part for name, part in parts.items() if uses(part[0])}
    base = merged(shipped, *(off for _, off in used.values()))
    recipes = {"shipped": shipped, "base": {**base, "about": "every part set back to GPT-2's"}}
    for name, (_on, off) in used.items():
        recipes[f"without {name}"] = {**merged(shipped, off), "about": f"shipped, {name} set back"}
    for name, (on, _off) in parts.items():
        if name not in used:
            recipes[f"shipped + {name}"] = {**merged(shipped, on), "about": f"shipped with {name} added"}
    for name, (on, _off) in parts.items():
        recipes[f"base + {name}"] = {**merged(base, on), "about": f"base with {name} alone"}
    return recipes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("SCRATCHLM_DATA_DIR", str(ROOT.parent / "shared/data"))
    )
    parser.add_argument(
        "--text", default="tinyshakespeare", choices=list(TEXTS),
        help="tinyshakespeare (1.1 MB, from --data-dir) or stdlib (3.9 MB of Python's own source code, "
        "reference and docstrings, offline)",
    )  # fmt: skip
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per recipe")
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES, choices=list(RECIPES))
    parser.add_argument(
        "--ablate", action="store_true", help="instead of --recipes: the shipped recipe, each of its parts "
        "removed alone and each added alone to a GPT-2 of the same size (the ablation table)",
    )  # fmt: skip
    parser.add_argument(
        "--parts", nargs="+", metavar="PART", help="with --ablate: only these parts' rows (and shipped and "
        "base), e.g. --parts 'value embeddings' rotary",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="runs per recipe, seeds --seed, --seed + 1, ...")
    parser.add_argument(
        "--nanogpt", metavar="DIR", help="a nanoGPT checkout: its own train.py runs too (the README's CPU "
        "recipe, schedule stretched to the budget; tiny Shakespeare only)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="RECIPE.SECTION.KEY=VALUE", help="change a recipe"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--max-wait", type=float, default=60.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results")
    args = parser.parse_args()
    if args.seeds < 1:
        raise SystemExit("--seeds must be at least 1")
    if args.nanogpt and args.text != "tinyshakespeare":
        raise SystemExit("--nanogpt runs its shakespeare_char recipe: use it with --text tinyshakespeare")

    text = TEXTS[args.text](args.data_dir)
    torch.set_num_threads(args.threads)
    keep_heap()  # as `scratchlm pretrain` does on CPUs (train.keep_heap)
    recipes = apply_changes(copy.deepcopy(RECIPES), args.set)
    if args.ablate:
        recipes = ablation_recipes(recipes["shipped"])
        unknown = sorted(set(args.parts or ()) - set(PARTS) - {"dropout"})
        if unknown:
            raise SystemExit(f"--parts: unknown {unknown} (known: {', '.join(PARTS)}, dropout)")
        args.recipes = [
            name for name in recipes
            if not args.parts or name in ("shipped", "base") or _part(name) in args.parts
        ]  # fmt: skip
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    quiet = wait_for_quiet(args.max_wait)
    print(f"{args.text}: {len(train_text):,} train / {len(val_text):,} val characters; quiet: {quiet}")

    seeds = [args.seed + i for i in range(args.seeds)]
    results: dict[str, list[dict]] = {}
    for seed in seeds:  # seed by seed, so a shorter run still has every recipe side by side
        for name in args.recipes:
            points = 0 if args.ablate else CURVE_POINTS  # the ablation scores each run once, at its end
            run = run_recipe(name, recipes[name], train_text, val_text, args.minutes * 60, seed, points)
            results.setdefault(name, []).append({**run, "seed": seed})
        if args.nanogpt:
            results.setdefault("nanogpt-checkout", []).append(
                {
                    **run_checkout(Path(args.nanogpt), text, args.minutes * 60, seed, args.threads),
                    "seed": seed,
                }
            )

    rows = [["recipe", "params", "ms/step", "steps", "tokens", "val bits/byte, mean ± sd", "per seed"]]
    summary = {}
    for name, runs in results.items():
        bpbs = [r["val_bpb"] for r in runs]
        sd = statistics.stdev(bpbs) if len(bpbs) > 1 else 0.0
        ms = 1000 * statistics.mean(r["step_s_calibrated"] for r in runs)
        summary[name] = {"mean": statistics.mean(bpbs), "sd": sd, "seeds": len(bpbs), "ms_per_step": ms}
        rows.append(
            [
                name,
                f"{runs[0]['params']:,}",
                f"{1000 * statistics.mean(r['step_s_calibrated'] for r in runs):.0f}",
                f"{statistics.mean(r['steps'] for r in runs):,.0f}" + ("*" if _cut_short(runs) else ""),
                f"{statistics.mean(r['tokens'] for r in runs):,.0f}" if runs[0].get("tokens") else "",
                f"{summary[name]['mean']:.3f} ± {sd:.3f}",
                " ".join(f"{b:.3f}" for b in bpbs),
            ]
        )
    note = (
        "bits/byte = val loss (nats/token) × val tokens / val bytes / ln 2; the last 10% of the text is "
        f"val, every window scored; {len(seeds)} seed(s)."
    )
    if any(_cut_short(runs) for runs in results.values()):
        note += "\n* a run was stopped by the time budget before its schedule ended (slower than calibrated)"
    for base in ("nanogpt-checkout", "nanogpt-budget", "nanogpt"):
        for name in ("ours", "modern", "shipped"):
            if {base, name} <= summary.keys():
                gain = 1 - summary[name]["mean"] / summary[base]["mean"]
                note += f"\n{name} vs {base}: {gain:.1%} lower bits/byte"
    print_table(
        f"{args.text}: val bits per byte after {args.minutes:g} min of training, {args.threads} threads",
        rows,
        note,
    )
    if args.ablate:
        print_table(
            "each part removed alone from the shipped recipe, and added alone to the base",
            *_ablation_rows(summary),
        )
    if not args.no_plot and args.text == "tinyshakespeare" and not args.ablate:
        first = {name: runs[0] for name, runs in results.items() if runs[0].get("curve")}
        plot(first, ROOT / "docs/img/quality-shakespeare.png", args.minutes, summary.get("nanogpt-checkout"))
    if not args.no_save:
        record = run_info("bench_quality", ["torch"])
        record["config"] = {
            "text": args.text,
            "minutes": args.minutes,
            "threads": args.threads,
            "seeds": seeds,
            "nanogpt": args.nanogpt,
            "quiet": quiet,
        }
        record["recipes"] = {name: recipes[name] for name in results if name in recipes}
        record["summary"] = summary
        record["runs"] = results
        append_result(ROOT / "benchmarks/results/bench_quality.jsonl", record)


def _cut_short(runs: list[dict]) -> bool:
    """Whether a budgeted run ended before its planned steps (the machine ran slower than calibrated)."""
    return any(r.get("max_steps") and r["steps"] < r["max_steps"] for r in runs)


def _part(recipe: str) -> str:
    """The part an ablation recipe's name is about: "without untied head" -> "untied head"."""
    for prefix in ("without ", "shipped + ", "base + "):
        if recipe.startswith(prefix):
            return recipe.removeprefix(prefix)
    return recipe


def _ablation_rows(summary: dict) -> tuple[list[list[str]], str]:
    """(rows, note) of the ablation table: per part, bits/byte without it (vs shipped) and with it alone
    (vs base); negative is better."""
    rows = [["part", "shipped without it", "Δ", "ms/step", "base with it alone", "Δ", "ms/step"]]
    shipped, base = summary["shipped"], summary["base"]
    for key in summary:
        if not key.startswith(("without ", "shipped + ")):
            continue
        name, added = _part(key), key.startswith("shipped + ")
        changed, alone = summary[key], summary.get(f"base + {name}")
        worth = changed["mean"] - shipped["mean"] if added else shipped["mean"] - changed["mean"]
        rows.append(
            [
                f"{name} (+)" if added else name,
                f"{changed['mean']:.3f}",
                f"{worth:+.3f}",
                f"{changed['ms_per_step']:.0f}",
                f"{alone['mean']:.3f}" if alone else "",
                f"{alone['mean'] - base['mean']:+.3f}" if alone else "",
                f"{alone['ms_per_step']:.0f}" if alone else "",
            ]
        )
    note = (
        f"shipped {shipped['mean']:.3f} bits/byte at {shipped['ms_per_step']:.0f} ms/step, base "
        f"{base['mean']:.3f} at {base['ms_per_step']:.0f}. Δ: what the part is worth (negative: it lowers "
        "bits/byte): shipped − without, alone − base. (+): a part the shipped recipe leaves out, added to it "
        "instead (Δ = with it − shipped)."
    )
    return rows, note


def shakespeare(data_dir: str) -> str:
    path = Path(data_dir) / DATA_FILE
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --data-dir (the folder holding {DATA_FILE})")
    return path.read_text(encoding="utf-8")


def stdlib(_data_dir: str) -> str:
    """The second text, offline, about 3.9 MB: 2 MB of the standard library's source code, then the demo's
    documentation corpus (the language reference and every docstring, 1.9 MB), whose tail is validation,
    as in `scratchlm demo --with-source`."""
    from scratchlm.data.stdlib import source_text
    from scratchlm.demo.corpus import documentation

    return source_text(2.0) + "\n\n" + documentation()


TEXTS = {"tinyshakespeare": shakespeare, "stdlib": stdlib}


def run_checkout(checkout: Path, text: str, budget_s: float, seed: int, threads: int) -> dict:
    """nanoGPT's own train.py with the README's CPU recipe, its schedule sized to the budget by its own
    measured step time, scored on our validation windows (benchmarks/nanogpt_peer.py)."""
    import tempfile

    from benchmarks import nanogpt_peer

    with tempfile.TemporaryDirectory() as work:
        copy = nanogpt_peer.prepare(checkout, Path(work), text, seed)
        step_s = nanogpt_peer.step_seconds(copy, threads)
        max_iters = max(101, int(budget_s / step_s * 0.97))
        print(f"[nanogpt-checkout] {step_s * 1000:.1f} ms/step → max_iters {max_iters} (seed {seed})")
        seconds, times = nanogpt_peer.run(copy, max_iters, threads)
        scored = nanogpt_peer.score(copy, "out-bench", text)
    print(f"[nanogpt-checkout] {seconds:.0f} s, val {scored['val_bpb']:.3f} bits/byte")
    return {
        **scored,
        "steps": max_iters,
        "tokens": max_iters * 12 * nanogpt_peer.CONTEXT,
        "train_s": round(sum(times), 1),
        "wall_s": round(seconds, 1),
        "step_s_calibrated": step_s,
    }


def apply_changes(recipes: dict, changes: list[str]) -> dict:
    for change in changes:
        key, _, value = change.partition("=")
        parts = key.split(".")
        if parts[0] not in recipes or not value:
            raise SystemExit(f"--set {change!r}: expected RECIPE.[model|train.]KEY=VALUE")
        target = recipes[parts[0]]
        for part in parts[1:-1]:
            target = target[part]
        target[parts[-1]] = _value(value)
    return recipes


def _value(text: str):
    """A --set value: an int, a float, true/false, or else the text itself (e.g. optimizer=adamw)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def run_recipe(
    name: str,
    recipe: dict,
    train_text: str,
    val_text: str,
    budget_s: float,
    seed: int,
    points: int = CURVE_POINTS,
) -> dict:
    t0 = time.perf_counter()
    tokenizer = train_bpe(train_text, recipe["vocab"], special_tokens=(), min_frequency=2)
    tokenizer_s = time.perf_counter() - t0
    train_ids = np.array(tokenizer.encode_ordinary(train_text), dtype=np.int64)
    val_ids = np.array(tokenizer.encode_ordinary(val_text), dtype=np.int64)
    val_bytes = len(val_text.encode("utf-8"))
    if "preset" in recipe:
        model_cfg = preset(recipe["preset"], vocab_size=tokenizer.vocab_size, **recipe["model"])
    else:
        model_cfg = ModelConfig(vocab_size=tokenizer.vocab_size, **recipe["model"])
    T = model_cfg.context_length
    print(
        f"\n[{name}] {recipe['about']}: vocab {tokenizer.vocab_size} ({tokenizer_s:.1f} s to train), "
        f"{len(val_ids) / val_bytes:.3f} tokens/byte on val"
    )
    base = from_dict(TrainConfig, {**recipe["train"], "seed": seed})
    step_s = calibrate(model_cfg, base, train_ids, seed, min(8.0, budget_s / 15))
    if "max_steps" in recipe:  # a fixed recipe: its own number of steps, however long they take
        max_steps = recipe["max_steps"]
        budget_s = max_steps * step_s
    else:
        max_steps = max(base.warmup_steps + 1, int(budget_s / step_s * 0.97))
    cfg = from_dict(TrainConfig, {**recipe["train"], "seed": seed, "max_steps": max_steps})
    precision = resolve_precision(cfg.precision, torch.device("cpu"))
    print(
        f"[{name}] {step_s * 1000:.1f} ms/step in {precision} → max_steps {max_steps} "
        f"(about {budget_s:.0f} s)"
    )

    torch.manual_seed(seed)
    model = GPT(model_cfg)
    optimizer = build_optimizer(model, cfg)
    sampler = WindowSampler([train_ids], T, seed)
    val = WindowSampler([val_ids], T, seed)
    clock = {"train_s": 0.0, "next_eval": budget_s / points if points else math.inf}
    curve: list[dict] = []

    def on_step(state, result):
        clock["train_s"] += result.seconds
        if clock["train_s"] >= clock["next_eval"]:
            clock["next_eval"] += budget_s / points
            loss = evaluate(model, val.iter_sequential(32), next_token_loss)
            curve.append(
                {
                    "train_s": round(clock["train_s"], 2),
                    "step": state.step,
                    "train_loss": result.loss,
                    "val_bpb": loss * len(val_ids) / val_bytes / math.log(2),
                }
            )
            bpb = curve[-1]["val_bpb"]
            print(f"[{name}] {clock['train_s']:6.0f} s  step {state.step:5d}  val {bpb:.3f} bits/byte")

    state = train(
        model,
        sampler,
        next_token_loss,
        optimizer,
        cfg,
        autocast=autocast(cfg.precision, torch.device("cpu")),  # scored in fp32 all the same
        on_step=on_step,
        should_stop=lambda: "max_steps" not in recipe and clock["train_s"] >= budget_s,
    )
    val_loss = evaluate(model, val.iter_sequential(32), next_token_loss)
    val_bpb = val_loss * len(val_ids) / val_bytes / math.log(2)
    curve.append({"train_s": round(clock["train_s"], 2), "step": state.step, "val_bpb": val_bpb})
    return {
        "vocab": tokenizer.vocab_size,
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_token": flops_per_token(model_cfg),
        "step_s_calibrated": step_s,
        "precision": precision,
        "max_steps": max_steps,
        "steps": state.step,
        "tokens": state.tokens,
        "train_s": round(clock["train_s"], 1),
        "val_loss": val_loss,
        "val_bpb": val_bpb,
        "val_tokens_per_byte": len(val_ids) / val_bytes,
        "curve": curve,
    }


def calibrate(
    model_cfg: ModelConfig, cfg: TrainConfig, train_ids: np.ndarray, seed: int, seconds: float = 8.0
) -> float:
    """Median seconds per training step of this recipe (scratchlm.train.perf.step_seconds)."""
    return step_seconds(model_cfg, cfg, train_ids, seed, seconds)


def plot(results: dict, path: Path, minutes: float, checkout: dict | None = None) -> None:
    """Each recipe's first-seed curve; nanoGPT's own train.py (no curve: its final score, mean over the seeds)
    and 15% below it (issue 27's target) as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in results.items():
        xs = [p["train_s"] / 60 for p in r["curve"]]
        ys = [p["val_bpb"] for p in r["curve"]]
        ax.plot(xs, ys, marker="o", label=f"{name} (vocab {r['vocab']}): {r['val_bpb']:.3f}")
    if checkout is not None:
        own, goal = checkout["mean"], 0.85 * checkout["mean"]
        ax.axhline(own, color="black", linestyle="--", label=f"nanoGPT's own train.py, at the end: {own:.3f}")
        ax.axhline(goal, color="grey", linestyle=":", label=f"15% below it: {goal:.3f}")
    ax.set_xlabel("training minutes (2 CPU threads)")
    ax.set_ylabel("val bits per byte")
    ax.set_title(f"tiny Shakespeare, {minutes:g} minutes of training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
