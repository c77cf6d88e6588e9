"""Generation benchmark: greedy tokens/s of our `generate` with and without the KV cache, side by side with
`transformers` `generate` on the same weights (exported with `save_hf_gpt2`), plus the memory-bandwidth
ceiling of cached decoding (bytes of weights + cache read per token vs a copy bandwidth measured in the run).

    python -m benchmarks.bench_generate [--threads 1,2] [--shapes small gpt2-small] [--new-tokens 256]
                                        [--repeats 3] [--max-wait 60] [--quick]

Prints a table and appends one JSON line to benchmarks/results/bench_generate.jsonl. MB = 10^6 bytes.
Random seeded weights, fp32, one prompt of `--prompt-tokens` random ids; tok/s counts new tokens over the
whole `generate` call (prefill included).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from transformers import GPT2LMHeadModel

from benchmarks.common import (
    MB,
    NOISY_CORES,
    ROOT,
    OtherLoad,
    append_result,
    print_table,
    race,
    run_info,
    wait_for_quiet,
)
from scratchlm.config import ModelConfig, gpt2_small, small
from scratchlm.generate.generate import generate
from scratchlm.interop.hf import save_hf_gpt2
from scratchlm.model.gpt import GPT

RESULTS = ROOT / "benchmarks" / "results" / "bench_generate.jsonl"
# Both fit 32 + 256 tokens; dropout is off in eval anyway.
SHAPES: dict[str, Callable[[], ModelConfig]] = {
    "small": lambda: small(context_length=1024, dropout=0.0),
    "gpt2-small": lambda: gpt2_small(qkv_bias=True, dropout=0.0),
}


# ---- bandwidth ----------------------------------------------------------------------------------------
def copy_bandwidth(nbytes: int, repeats: int = 7) -> float:
    """GB/s of `dst.copy_(src)` on fp32 tensors of nbytes each, counting read + write; median of repeats."""
    src = torch.rand(max(1, nbytes // 4))
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - t0)
    return 2 * src.numel() * 4 / statistics.median(times) / 1e9


# ---- models and runners --------------------------------------------------------------------------------
def build_pair(cfg: ModelConfig, seed: int, directory: Path) -> tuple[GPT, GPT2LMHeadModel]:
    """Our GPT with seeded GPT-2 init, and transformers' GPT2LMHeadModel loaded from its export."""
    ours = GPT(cfg, init=False)
    ours.init_weights(seed)
    ours.eval()
    save_hf_gpt2(ours, directory)
    hf = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32).eval()
    return ours, hf


def runners(ours: GPT, hf: GPT2LMHeadModel, prompt: torch.Tensor, n: int) -> dict[str, Callable[[], list]]:
    """Greedy generation of exactly n new tokens, returned as a list. No EOS is set on either side
    (`save_hf_gpt2` without eos_id writes none), so neither stops early."""
    T = prompt.shape[1]
    mask = torch.ones_like(prompt)

    def run_ours(use_cache: bool) -> list:
        return generate(ours, prompt, max_new_tokens=n, use_cache=use_cache)[0, T:].tolist()

    def run_hf(use_cache: bool) -> list:
        out = hf.generate(
            prompt,
            attention_mask=mask,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=0,
        )
        return out[0, T:].tolist()

    return {
        "ours_cached": lambda: run_ours(True),
        "hf_cached": lambda: run_hf(True),
        "ours_uncached": lambda: run_ours(False),
        "hf_uncached": lambda: run_hf(False),
    }


def first_divergence(a: list, b: list) -> int | None:
    """Index of the first differing token (or the shorter length), None when equal."""
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    return first if first is not None or len(a) == len(b) else min(len(a), len(b))


def bytes_per_token(cfg: ModelConfig, n_params: int, avg_len: float) -> dict:
    """fp32 bytes read per cached decoding step. Weights: everything once, except that the position table
    and an untied token table are only looked up (one row each); a tied table is read whole by the head.
    Cache: keys and values of every layer at the average number of positions attended."""
    rows_only = cfg.context_length * cfg.emb_dim - cfg.emb_dim
    if not cfg.tie_embeddings:
        rows_only += cfg.vocab_size * cfg.emb_dim - cfg.emb_dim
    weights = 4 * (n_params - rows_only)
    kv = 4 * 2 * cfg.n_layers * cfg.emb_dim * avg_len
    return {"weights_mb": weights / MB, "kv_cache_mb": kv / MB, "total_mb": (weights + kv) / MB}


def bench_shape(name: str, ours: GPT, hf: GPT2LMHeadModel, cfg: dict, bandwidth: dict) -> dict:
    """One shape at the current thread count: the four runners raced, token agreement, the ceiling."""
    n, T = cfg["new_tokens"], cfg["prompt_tokens"]
    generator = torch.Generator().manual_seed(cfg["seed"])
    prompt = torch.randint(0, ours.cfg.vocab_size, (1, T), generator=generator)
    fns = runners(ours, hf, prompt, n)
    warm = runners(ours, hf, prompt, min(n, cfg["warmup_tokens"]))
    row: dict = {"load": wait_for_quiet(cfg["max_wait_s"])}
    with torch.inference_mode(), OtherLoad() as other:
        for fn in warm.values():
            fn()
        repeats = cfg["repeats"][name]
        results = race(fns, {k: repeats["uncached" if "uncached" in k else "cached"] for k in fns})
    row["load"]["other_cores_busy_during"] = other.cores
    row["noisy"] = other.cores is not None and other.cores > NOISY_CORES
    tokens = {k: out for k, (_, out) in results.items()}
    row["repeats"] = repeats
    row["new_tokens"] = {k: len(v) for k, v in tokens.items()}
    row.update({f"{k}_tok_s": len(tokens[k]) / sec for k, (sec, _) in results.items()})
    row["ours/hf_cached"] = row["ours_cached_tok_s"] / row["hf_cached_tok_s"]
    row["ours/hf_uncached"] = row["ours_uncached_tok_s"] / row["hf_uncached_tok_s"]
    row["ours_cached/uncached"] = row["ours_cached_tok_s"] / row["ours_uncached_tok_s"]
    row["hf_cached/uncached"] = row["hf_cached_tok_s"] / row["hf_uncached_tok_s"]
    ref = tokens["ours_cached"]
    others = {k: v for k, v in tokens.items() if k != "ours_cached"}
    row["first_divergence_vs_ours_cached"] = {k: first_divergence(ref, v) for k, v in others.items()}
    row["first_32_match"] = all(v[:32] == ref[:32] for v in tokens.values())

    bpt = bytes_per_token(ours.cfg, ours.num_parameters(), T + n / 2)
    row["bytes_per_token"] = bpt
    row["copy_gb_s_working_set"] = copy_bandwidth(int(bpt["total_mb"] * MB / 2))
    for label, gb_s in (("", bandwidth["copy_gb_s"]), ("_working_set", row["copy_gb_s_working_set"])):
        ceiling = gb_s * 1e9 / (bpt["total_mb"] * MB)
        row[f"ceiling{label}_tok_s"] = ceiling
        row[f"ours_cached/ceiling{label}"] = row["ours_cached_tok_s"] / ceiling
        row[f"hf_cached/ceiling{label}"] = row["hf_cached_tok_s"] / ceiling
    return row


# ---- report --------------------------------------------------------------------------------------------
def _verdict(x: float, goal: float, bar: float | None = None) -> str:
    if x >= goal:
        return f"{x:.2f} (goal met)"
    if bar is not None and x >= bar:
        return f"{x:.2f} (bar met)"
    return f"{x:.2f} (below)"


def print_report(cfg: dict, runs: dict) -> None:
    head = ["shape", "threads", "ours cache", "ours no-cache", "HF cache", "HF no-cache"]
    rows = [[*head, "ours/HF cache", "ours cache/no-cache", "ceiling", "ours/ceiling"]]
    for threads, shapes in runs.items():
        for name, r in shapes.items():
            rows.append(
                [name + (" *" if r["noisy"] else ""), threads]
                + [r[f"{k}_tok_s"] for k in ("ours_cached", "ours_uncached", "hf_cached", "hf_uncached")]
                + [_verdict(r["ours/hf_cached"], 2.0, 1.5), _verdict(r["ours_cached/uncached"], 3.0)]
                + [r["ceiling_tok_s"], r["ours_cached/ceiling"]]
            )
    note = (
        "goals: ours cache >= 2x HF cache (bar >= 1.5x); ours cache >= 3x ours no-cache.\n"
        f"ceiling = copy bandwidth ({cfg['bandwidth_mb']} MB fp32 copy, read + write) / bytes read per cached"
        " token; above 1 when\nthe weights stay in a large L3 or reads stream faster than copies (a copy also"
        " pays for its writes).\n"
        f"* other processes kept more than {NOISY_CORES} of a core busy during the block: OpenMP threads that"
        " share a core with\nthem can stall many times over, so that row's numbers (and ratios) are not"
        " reliable; rerun on a quiet machine."
    )
    title = (
        f"greedy tokens/s, {cfg['prompt_tokens']}-token prompt + {cfg['new_tokens']} new, fp32, median"
        " (alternating order)"
    )
    print_table(title, rows, note, digits=2)

    rows = [["shape", "threads", "weights MB", "KV MB", "copy GB/s", "ceiling", "copy GB/s ws", "ceiling ws"]]
    rows[0] += ["HF/ceiling ws", "ours/ceiling ws", "first divergence", "other load"]
    for threads, shapes in runs.items():
        for name, r in shapes.items():
            b = r["bytes_per_token"]
            div = ", ".join(f"{k}: {v}" for k, v in r["first_divergence_vs_ours_cached"].items())
            load = f"{r['load']['other_cores_busy']} / {r['load']['other_cores_busy_during']}"
            ws = [r["copy_gb_s_working_set"], r["ceiling_working_set_tok_s"]]
            ws += [r["hf_cached/ceiling_working_set"], r["ours_cached/ceiling_working_set"]]
            dram = [cfg["bandwidth"][threads]["copy_gb_s"], r["ceiling_tok_s"]]
            rows.append([name, threads, b["weights_mb"], b["kv_cache_mb"], *dram, *ws, div, load])
    note = (
        "bytes per cached token = fp32 weights (tied table once: the head reads it whole) + K and V of\n"
        "every layer at the average length (prompt + new/2). 'ws': copy bandwidth measured at the model's\n"
        "own bytes per token, so it sees the caches decoding sees (a large L3 can hold the small model).\n"
        "first divergence: index of the first new token that differs from ours cached (None = identical).\n"
        "other load: cores kept busy by other processes before / during the block."
    )
    print_table("memory-bandwidth limit and agreement", rows, note, digits=2)


def parse_config() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="torch.set_num_threads values, comma-separated")
    p.add_argument("--shapes", nargs="+", choices=list(SHAPES), help="default: all; --quick: small")
    p.add_argument("--new-tokens", type=int, help="default 256; --quick: 32")
    p.add_argument("--prompt-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, help="small shape, default 3 (gpt2-small: 2 cached, 1 uncached)")
    p.add_argument("--max-wait", type=float, default=60, help="seconds to wait for a quiet machine per block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small shape, 32 new tokens, 1 repeat: a smoke run")
    args = p.parse_args()
    q = args.quick
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        p.error(f"--threads {args.threads!r}: need positive integers")
    r = args.repeats or (1 if q else 3)
    return {
        "quick": q,
        "threads": threads,
        "shapes": args.shapes or (["small"] if q else list(SHAPES)),
        "new_tokens": args.new_tokens or (32 if q else 256),
        "prompt_tokens": args.prompt_tokens,
        # A 124M uncached run re-reads the whole sequence every step (minutes at 256 tokens): time it once.
        "repeats": {
            "small": {"cached": r, "uncached": r},
            "gpt2-small": {"cached": min(r, 2), "uncached": 1},
        },
        "warmup_tokens": 8 if q else 16,  # first-call costs only: an uncached 124M step costs ~0.3 s
        "max_wait_s": args.max_wait,
        "seed": args.seed,
        "bandwidth_mb": 256,
        "dtype": "float32",
        "inference_mode": True,
    }


def main() -> None:
    cfg = parse_config()
    transformers.logging.set_verbosity_error()
    default_threads = torch.get_num_threads()
    models, shapes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in cfg["shapes"]:
            print(f"building {name} and its transformers twin ...", flush=True)
            models[name] = build_pair(SHAPES[name](), cfg["seed"], Path(tmp) / name)
            shapes[name] = models[name][0].cfg.to_dict() | {"params": models[name][0].num_parameters()}
    cfg["models"] = shapes
    cfg["default_threads"] = default_threads
    cfg["hf_attn_implementation"] = models[cfg["shapes"][0]][1].config._attn_implementation

    runs: dict[int, dict] = {}
    cfg["bandwidth"] = {}
    for threads in cfg["threads"]:
        torch.set_num_threads(threads)
        runs[threads] = {}
        load = wait_for_quiet(cfg["max_wait_s"])
        cfg["bandwidth"][threads] = {"copy_gb_s": copy_bandwidth(cfg["bandwidth_mb"] * MB), "load": load}
        print(f"threads {threads}: copy {cfg['bandwidth'][threads]['copy_gb_s']:.2f} GB/s", flush=True)
        for name in cfg["shapes"]:
            print(f" {name}, {threads} thread(s) ...", flush=True)
            t0 = time.perf_counter()
            runs[threads][name] = bench_shape(name, *models[name], cfg, cfg["bandwidth"][threads])
            runs[threads][name]["block_s"] = time.perf_counter() - t0
            print(f"  done in {runs[threads][name]['block_s']:.0f} s", flush=True)
    torch.set_num_threads(default_threads)
    print_report(cfg, runs)

    versions = ("scratchlm", "torch", "transformers", "safetensors")
    record = {**run_info("bench_generate", versions), "config": cfg, "runs": runs}
    append_result(RESULTS, record)


if __name__ == "__main__":
    main()
