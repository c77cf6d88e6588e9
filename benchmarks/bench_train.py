"""Training benchmark: tokens/s and MFU of one training step of our GPT, side by side with `transformers`
GPT2LMHeadModel doing the same step on the same weights; peak memory of a step; where our time goes.

    python -m benchmarks.bench_train [--shapes tiny small gpt2-small] [--steps N] [--threads N] [--compile]
                                     [--keep-heap] [--no-memory] [--no-profile] [--max-wait 60] [--quick]

A step: forward on a fixed seeded (B, T) batch of random ids, cross-entropy against the next ids (computed
the same way from `.logits` for both models; HF's `labels` path is not used), backward, grad-norm clip 1.0,
AdamW (lr 3e-4, weight decay 0.1 on 2-D parameters only, fused when the CPU build has it), zero_grad(None).
Dropout 0 on both sides, both in train mode; HF runs with attn_implementation="sdpa" and use_cache=False.
Time: 2 warm-up steps, then N steps per model in alternating order; medians over the steps during which
other processes kept the cores free (see `summarize`). MFU = flops_per_token(cfg, training=True) x tokens/s
/ the fp32 matmul peak measured in the same run (flops_per_token counts attention at the full context).
Memory: peak RSS of a fresh process per model (see `memory_probe`). Profile: torch.profiler over one step
of ours, self CPU time by op category. Prints tables and appends one JSON line to
benchmarks/results/bench_train.jsonl. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import GPT2Config, GPT2LMHeadModel

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
from scratchlm.config import ModelConfig, gpt2_small, small, tiny
from scratchlm.interop.hf import config_to_hf, save_hf_gpt2
from scratchlm.model.gpt import GPT
from scratchlm.model.sizing import flops_per_token
from scratchlm.train.perf import keep_heap, matmul_peak_flops

RESULTS = ROOT / "benchmarks" / "results" / "bench_train.jsonl"
# name -> (config, batch size). Every shape trains at its full context length.
SHAPES: dict[str, tuple[Callable[[], ModelConfig], int]] = {
    "tiny": (lambda: tiny(vocab_size=65, context_length=64, dropout=0.0), 12),
    "small": (lambda: small(dropout=0.0), 8),
    "gpt2-small": (lambda: gpt2_small(qkv_bias=True, dropout=0.0), 1),
}
STEPS = {"tiny": 30, "small": 5, "gpt2-small": 3}  # timed steps per model, after WARMUP
WARMUP = 2
GOAL_SPEEDUP = {"tiny": 1.8, "small": 1.4, "gpt2-small": 1.4}
GOAL_MFU = {"gpt2-small": 0.75}
GOAL_MEMORY = 0.8  # ours / HF peak step memory on gpt2-small
PER_STEP_LOAD_S = 0.5  # shorter steps: judge the load over the whole race, not per step
COMPILE_LIMIT_S = 120  # a compile slower than this is not tried on the remaining shapes
LR, WEIGHT_DECAY, CLIP = 3e-4, 0.1, 1.0


# ---- the step -------------------------------------------------------------------------------------------
def make_optimizer(model: nn.Module) -> tuple[torch.optim.AdamW, str]:
    """AdamW with weight decay on 2-D parameters (matmul weights, embeddings) only; fused kernel if the
    build has one for CPU, else foreach. Returns the optimizer and which implementation it uses."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    try:
        return torch.optim.AdamW(groups, lr=LR, fused=True), "fused"
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=LR, foreach=True), "foreach"


def make_batch(cfg: ModelConfig, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random ids (B, T + 1) cut into inputs (B, T) and next-token targets (B, T)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.vocab_size, (batch_size, cfg.context_length + 1), generator=generator)
    return ids[:, :-1].contiguous(), ids[:, 1:].contiguous()


def make_step(
    model: nn.Module,
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
) -> Callable[[], float]:
    """One training step as a closure returning the loss; phases are labelled for the profiler."""
    inputs, targets = batch
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> float:
        with record_function("forward"):
            logits = logits_of(inputs)
        with record_function("loss"):
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        with record_function("backward"):
            loss.backward()
        with record_function("grad clip"):
            nn.utils.clip_grad_norm_(params, CLIP)
        with record_function("optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def build_ours(cfg: ModelConfig, seed: int) -> GPT:
    model = GPT(cfg, init=False)
    model.init_weights(seed)
    return model.train()


def hf_logits(model: GPT2LMHeadModel) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda ids: model(input_ids=ids, use_cache=False).logits


def build_hf_twin(ours: GPT, directory: Path) -> GPT2LMHeadModel:
    """transformers' GPT2LMHeadModel with our weights, through `save_hf_gpt2`."""
    save_hf_gpt2(ours, directory)
    hf = GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float32, attn_implementation="sdpa")
    return hf.train()


def settle(max_wait: float) -> None:
    """Wait quietly (up to max_wait s) until other processes keep at most NOISY_CORES busy."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        with OtherLoad() as other:
            time.sleep(0.25)
        if other.cores is None or other.cores <= NOISY_CORES:
            return


def observed(fn: Callable[[], float], log: list[dict], settle_s: float) -> Callable[[], float]:
    """fn, first waiting up to settle_s for a quiet moment, logging each call's seconds, the cores other
    processes kept busy meanwhile, and the kernel's share: minor page faults, system CPU seconds."""

    def run() -> float:
        settle(settle_s)
        before = resource.getrusage(resource.RUSAGE_SELF)
        with OtherLoad() as other:
            t0 = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults, sys_s = after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime
        log.append({"s": seconds, "other_cores": other.cores, "page_faults": faults, "sys_s": sys_s})
        return out

    return run


def summarize(log: list[dict], race_cores: float | None) -> dict:
    """Medians over the quiet steps (other processes kept at most NOISY_CORES busy) when at least half
    the steps were quiet; else over all steps, marked noisy. Steps under PER_STEP_LOAD_S are judged by the
    load over the whole race instead: /proc/stat counts in 10 ms ticks."""
    if statistics.median(e["s"] for e in log) < PER_STEP_LOAD_S:
        noisy = race_cores is not None and race_cores > NOISY_CORES
        quiet, use = ([] if noisy else log), log
    else:
        quiet = [e for e in log if e["other_cores"] is not None and e["other_cores"] <= NOISY_CORES]
        use = quiet if 2 * len(quiet) >= len(log) else log
        noisy = use is log and len(quiet) < len(log)
    return {
        "step_s": statistics.median(e["s"] for e in use),
        "page_faults": statistics.median(e["page_faults"] for e in use),
        "sys_s": statistics.median(e["sys_s"] for e in use),
        "quiet_steps": len(quiet),
        "noisy": noisy,
        "steps_log": log,
    }


# ---- machine peak ---------------------------------------------------------------------------------------
def matmul_peak(n: int = 2048) -> float:
    """GFLOP/s of an fp32 (n, n) @ (n, n) matmul on the CPU (scratchlm.train.perf, median of 5)."""
    return matmul_peak_flops("cpu", torch.float32, n) / 1e9


# ---- peak memory: one fresh process per model -----------------------------------------------------------
def _rss_mb(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB
    raise OSError(f"no {field} in /proc/self/status")


def memory_probe(shape: str, which: str, threads: int, seed: int) -> dict:
    """Run inside a fresh process: build one model, reset the peak-RSS mark (/proc/self/clear_refs, "5"),
    run two steps (the first allocates AdamW's moments, the second runs with them in place), read the peak."""
    torch.set_num_threads(threads)
    make_cfg, batch_size = SHAPES[shape]
    cfg = make_cfg()
    imports = _rss_mb("VmRSS")
    if which == "ours":
        model: nn.Module = build_ours(cfg, seed)
        logits_of: Callable[[torch.Tensor], torch.Tensor] = model
    else:  # same shapes as the exported twin; the values do not change the memory
        hf_cfg = GPT2Config.from_dict(config_to_hf(cfg))
        model = GPT2LMHeadModel._from_config(hf_cfg, attn_implementation="sdpa").train()
        logits_of = hf_logits(model)
    weights = _rss_mb("VmRSS") - imports
    optimizer, _ = make_optimizer(model)
    step = make_step(model, logits_of, make_batch(cfg, batch_size, seed), optimizer)
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss_mb("VmHWM")
    losses = [step() for _ in range(2)]
    peak = _rss_mb("VmHWM")
    return {
        "weights_mb": weights,
        "peak_over_imports_mb": peak - imports,
        "step_growth_mb": peak - before,
        "peak_rss_mb": peak,
        "losses": losses,
    }


def measure_memory(shape: str, which: str, cfg: dict) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_train", "--memory-probe", shape, which]
    cmd += ["--threads", str(cfg["threads"]), "--seed", str(cfg["seed"])] + ["--keep-heap"] * cfg["keep_heap"]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, json.JSONDecodeError, IndexError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        return {"error": f"{type(exc).__name__}: {stderr.strip().splitlines()[-1:] or exc}"}


# ---- profile: where our time goes -----------------------------------------------------------------------
PHASES = ("forward", "loss", "backward", "grad clip", "optimizer")
MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear"}


def _phase(event: object) -> str:
    node = event
    while node is not None:
        if node.name in PHASES:  # type: ignore[attr-defined]
            return node.name  # type: ignore[attr-defined]
        node = node.cpu_parent  # type: ignore[attr-defined]
    return "none"


def _category(name: str, phase: str) -> str:
    if phase in ("optimizer", "grad clip"):
        return "optimizer (AdamW, zero_grad)" if phase == "optimizer" else "grad clip"
    if name in MATMUL:
        return "matmul forward" if phase in ("forward", "loss") else "matmul backward"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention (sdpa fwd + bwd)"
    if "layer_norm" in name or "gelu" in name:
        return "layer norm + gelu"
    if "softmax" in name or "nll_loss" in name or "cross_entropy" in name:
        return "cross-entropy"
    if "embedding" in name:
        return "embedding"
    return "other"


def profile_step(step: Callable[[], float], top: int = 10) -> dict:
    """One step under torch.profiler (CPU): self time by category and by phase, and the top ops."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    by_category: dict[str, float] = defaultdict(float)
    by_phase: dict[str, float] = defaultdict(float)
    for event in prof.events():
        phase = _phase(event)
        by_phase[phase] += event.self_cpu_time_total / 1e6
        by_category[_category(event.name, phase)] += event.self_cpu_time_total / 1e6
    total = sum(by_category.values())
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "total_s": total,
        "by_category": {k: v / total for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "by_phase": {k: v / total for k, v in by_phase.items()},
        "top_ops": [
            {"op": e.key, "self_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / 1e6 / total}
            | {"calls": e.count}
            for e in ops
        ],
    }


# ---- one shape ------------------------------------------------------------------------------------------
def bench_shape(name: str, cfg: dict, peak_gflop_s: float, tmp: Path) -> dict:
    """Build ours and its HF twin, warm both up (and a compiled ours with --compile), race them."""
    make_cfg, batch_size = SHAPES[name]
    model_cfg = make_cfg()
    ours = build_ours(model_cfg, cfg["seed"])
    hf = build_hf_twin(ours, tmp / name)
    batch = make_batch(model_cfg, batch_size, cfg["seed"])
    ours_opt, impl = make_optimizer(ours)
    hf_opt, _ = make_optimizer(hf)
    steps = {
        "ours": make_step(ours, ours, batch, ours_opt),
        "hf": make_step(hf, hf_logits(hf), batch, hf_opt),
    }
    row: dict = {
        "model": model_cfg.to_dict(),
        "batch_size": batch_size,
        "params": ours.num_parameters(),
        "hf_params": hf.num_parameters(),  # HF's c_attn always has a bias: zeros where ours has none
        "hf_attn_implementation": hf.config._attn_implementation,
        "optimizer": impl,
        "flops_per_token": flops_per_token(model_cfg, training=True),
    }
    # The two models start from the same weights and see the same batch: their losses must agree.
    losses = {k: [fn() for _ in range(WARMUP)] for k, fn in steps.items()}
    row["warmup_losses"] = losses
    row["loss_gap_first_step"] = abs(losses["ours"][0] - losses["hf"][0])
    if cfg["compile"] and cfg["compile_ok"]:
        compiled = torch.compile(ours)
        t0 = time.perf_counter()
        try:
            steps["ours_compiled"] = make_step(ours, compiled, batch, ours_opt)
            for _ in range(WARMUP):
                steps["ours_compiled"]()
        except Exception as exc:  # inductor needs a C++ toolchain and may not support this build
            steps.pop("ours_compiled", None)
            row["compile_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            cfg["compile_ok"] = False
        row["compile_s"] = time.perf_counter() - t0
        if row["compile_s"] > COMPILE_LIMIT_S:
            cfg["compile_ok"] = False
        print(f"  compile + {WARMUP} steps: {row['compile_s']:.0f} s", flush=True)

    row["load"] = wait_for_quiet(cfg["max_wait_s"])
    repeats = cfg["steps"][name]
    # Steps of a second or more each wait for a quiet moment first (not counted in their time).
    settle_s = cfg["settle_s"] if name != "tiny" else 0.0  # tiny: 30 ms steps
    logs: dict[str, list[dict]] = {k: [] for k in steps}
    with OtherLoad() as other:
        race({k: observed(fn, logs[k], settle_s) for k, fn in steps.items()}, dict.fromkeys(steps, repeats))
    row["load"]["other_cores_busy_during"] = other.cores
    row["steps"] = repeats
    row["settle_s"] = settle_s
    tokens = batch_size * model_cfg.context_length
    for k, log in logs.items():
        summary = summarize(log, other.cores)
        row[k] = summary
        row[f"{k}_step_s"] = summary["step_s"]
        row[f"{k}_tok_s"] = tokens / summary["step_s"]
        row[f"{k}_mfu"] = row["flops_per_token"] * tokens / summary["step_s"] / (peak_gflop_s * 1e9)
    row["noisy"] = any(row[k]["noisy"] for k in logs)
    row["ours/hf"] = row["ours_tok_s"] / row["hf_tok_s"]
    if "ours_compiled_tok_s" in row:
        row["ours_compiled/hf"] = row["ours_compiled_tok_s"] / row["hf_tok_s"]

    if name in cfg["profile_shapes"]:
        print(f"  profiling one step of ours on {name} ...", flush=True)
        load = wait_for_quiet(cfg["max_wait_s"])
        with OtherLoad() as other:
            row["profile"] = profile_step(steps["ours"])
        row["profile"]["load"] = load | {"other_cores_busy_during": other.cores}
        row["profile"]["noisy"] = other.cores is not None and other.cores > NOISY_CORES
    return row


# ---- report ---------------------------------------------------------------------------------------------
def _verdict(x: float, goal: float | None, at_most: bool = False) -> str:
    """x with 'goal met' or the goal beside it; goals are lower bounds unless at_most."""
    if goal is None:
        return f"{x:.2f}"
    met, sign = (x <= goal, "<=") if at_most else (x >= goal, ">=")
    return f"{x:.2f} (goal met)" if met else f"{x:.2f} (goal {sign} {goal})"


def print_report(cfg: dict, runs: dict) -> None:
    has_compiled = any("ours_compiled_tok_s" in r for r in runs.values())
    head = ["shape", "B x T", "ours tok/s", "HF tok/s", "ours/HF", "ours MFU", "HF MFU"]
    head += ["compiled tok/s", "compiled/HF", "compiled MFU"] if has_compiled else []
    rows = [head]
    for name, r in runs.items():
        row = [name + (" *" if r["noisy"] else ""), f"{r['batch_size']} x {r['model']['context_length']}"]
        row += [f"{r['ours_tok_s']:,.0f}", f"{r['hf_tok_s']:,.0f}"]
        row += [_verdict(r["ours/hf"], GOAL_SPEEDUP[name]), _verdict(r["ours_mfu"], GOAL_MFU.get(name))]
        row += [f"{r['hf_mfu']:.2f}"]
        if has_compiled:
            if "ours_compiled_tok_s" in r:
                row += [f"{r['ours_compiled_tok_s']:,.0f}", f"{r['ours_compiled/hf']:.2f}"]
                row += [f"{r['ours_compiled_mfu']:.2f}"]
            else:
                row += ["-", "-", "-"]
        rows.append(row)
    note = (
        f"goals: ours/HF >= {GOAL_SPEEDUP['tiny']} on tiny, >= {GOAL_SPEEDUP['small']} on the others; MFU >="
        f" {GOAL_MFU['gpt2-small']} on gpt2-small.\n"
        f"MFU = flops_per_token(training) x tok/s / {cfg['peak_gflop_s']:.1f} GFLOP/s, the median fp32"
        f" {cfg['peak_matmul_n']}^2 matmul measured in this run ({cfg['threads']} threads).\n"
        "flops_per_token counts attention at the full context (all shapes run at it, causal or not) and"
        " leaves out the\noptimizer, norms and activations: MFU is the share of the peak the model's matmuls"
        " would need.\n"
        f"* fewer than half the steps of a model ran while other processes kept <= {NOISY_CORES} of a core"
        " busy: OpenMP\nthreads that share a core with them can stall many times over, so that row is not"
        " reliable; rerun on a quiet\nmachine."
    )
    title = (
        f"training step tokens/s, fp32, {cfg['threads']} threads, median of {WARMUP} warm-up +"
        " N timed steps (alternating order)"
    )
    print_table(title, rows, note, digits=2)

    rows = [["shape", "params", "optimizer", "steps", "ours s/step", "HF s/step", "ours faults", "HF faults"]]
    rows[0] += ["ours sys s", "HF sys s", "loss gap", "quiet", "other load"]
    for name, r in runs.items():
        load = f"{r['load']['other_cores_busy']} / {r['load']['other_cores_busy_during']}"
        rows.append([name, f"{r['params'] / 1e6:.1f}M", r["optimizer"], r["steps"], r["ours_step_s"]])
        rows[-1] += [r["hf_step_s"], f"{r['ours']['page_faults']:,.0f}", f"{r['hf']['page_faults']:,.0f}"]
        rows[-1] += [r["ours"]["sys_s"], r["hf"]["sys_s"], f"{r['loss_gap_first_step']:.1e}"]
        rows[-1] += [f"{r['ours']['quiet_steps']}/{r['hf']['quiet_steps']} of {r['steps']}", load]
    note = (
        "faults, sys s: minor page faults and kernel CPU seconds (all threads) per step, median. glibc gives"
        " allocations\nover 32 MB back to the OS when freed, so each step faults its big tensors in again,"
        f" 4 KiB at a time{'' if cfg['keep_heap'] else ' (--keep-heap)'}.\n"
        "loss gap: |ours - HF| loss of the first step (same weights, same batch: the work is the same).\n"
        f"quiet: steps (ours/HF) during which other processes kept <= {NOISY_CORES} cores busy; medians use"
        " only those\nwhen at least half were quiet. Steps of small shapes first wait up to"
        f" {cfg['settle_s']:.0f} s for a quiet moment.\n"
        "other load: cores kept busy by other processes before / during the whole race."
    )
    if any("compile_s" in r for r in runs.values()):
        note += "\ncompile: " + "; ".join(
            f"{n} {r['compile_s']:.0f} s" + (f" ({r['compile_error']})" if "compile_error" in r else "")
            for n, r in runs.items()
            if "compile_s" in r
        )
    print_table("steps and agreement", rows, note, digits=3)

    if cfg["memory"]:
        rows = [["shape", "ours MB", "HF MB", "ours/HF", "ours step MB", "HF step MB", "ours wts", "HF wts"]]
        for name, r in runs.items():
            m = r.get("memory", {})
            o, h = m.get("ours", {}), m.get("hf", {})
            if "error" in o or "error" in h:
                rows.append([name, o.get("error", "-"), h.get("error", "-"), "-", "-", "-", "-", "-"])
                continue
            ratio = o["peak_over_imports_mb"] / h["peak_over_imports_mb"]
            verdict = _verdict(ratio, GOAL_MEMORY if name == "gpt2-small" else None, at_most=True)
            rows.append([name, o["peak_over_imports_mb"], h["peak_over_imports_mb"], verdict])
            rows[-1] += [o["step_growth_mb"], h["step_growth_mb"], o["weights_mb"], h["weights_mb"]]
        note = (
            "peak RSS of a fresh process per model (VmHWM, reset after building it) minus its RSS after"
            " imports:\nweights + gradients + AdamW moments + activations and temporaries of two steps."
            " 'step MB': the peak above the\nbuilt model; 'wts': RSS growth from building the model."
            f" Goal: ours/HF <= {GOAL_MEMORY} on gpt2-small."
        )
        print_table("peak memory of a training step (MB)", rows, note, digits=0)

    for name, r in runs.items():
        if "profile" not in r:
            continue
        p = r["profile"]
        rows = [["where ours spends a step", "share", "s"]]
        rows += [[k, f"{v:.1%}", v * p["total_s"]] for k, v in p["by_category"].items()]
        phases = ", ".join(f"{k} {v:.0%}" for k, v in p["by_phase"].items())
        title = f"profile, {name}: self CPU time of one step of ours ({p['total_s']:.2f} s profiled)"
        note = "* other processes were busy during the profile: not reliable" if p["noisy"] else ""
        print_table(title + (" *" if p["noisy"] else ""), rows, note)
        print(f"by phase: {phases}")
        rows = [["top ops by self CPU time", "self s", "share", "calls"]]
        rows += [[o["op"], o["self_s"], f"{o['share']:.1%}", o["calls"]] for o in p["top_ops"]]
        print_table(f"profile, {name}: top ops", rows, "")


def parse_config() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", choices=list(SHAPES), help="default: all; --quick: tiny")
    p.add_argument("--steps", type=int, help=f"timed steps per model; default {STEPS}; --quick: 3")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    p.add_argument("--compile", action="store_true", help="add a torch.compile(ours) row (slow to build)")
    p.add_argument("--keep-heap", action="store_true", help="glibc: keep freed memory (see keep_heap)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory probes")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profiles")
    p.add_argument("--max-wait", type=float, default=60, help="seconds to wait for a quiet machine per block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny shape, 3 steps, no memory probe: a smoke run")
    p.add_argument("--memory-probe", nargs=2, metavar=("SHAPE", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads < 1:
        p.error(f"--threads {args.threads}: need a positive integer")
    q = args.quick
    shapes = args.shapes or (["tiny"] if q else list(SHAPES))
    return {
        "quick": q,
        "memory_probe": args.memory_probe,
        "shapes": shapes,
        "steps": {s: args.steps or (3 if q else STEPS[s]) for s in shapes},
        "warmup_steps": WARMUP,
        "threads": args.threads,
        "compile": args.compile,
        "compile_ok": True,
        "keep_heap": args.keep_heap,
        "memory": args.memory and not q,
        "profile_shapes": [s for s in shapes if s != "tiny" or q] if args.profile else [],
        "max_wait_s": args.max_wait,
        "settle_s": 15.0,
        "seed": args.seed,
        "peak_matmul_n": 2048,
        "dtype": "float32",
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
        "clip": CLIP,
        "hf_loss": "F.cross_entropy on .logits (same as ours), not the labels path",
        "hf_forward": "attn_implementation=sdpa, use_cache=False",
    }


def main() -> None:
    cfg = parse_config()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if cfg["keep_heap"] and not keep_heap():
        sys.exit("--keep-heap: this C library has no mallopt (glibc only)")
    if cfg["memory_probe"]:
        shape, which = cfg["memory_probe"]
        print(json.dumps(memory_probe(shape, which, cfg["threads"], cfg["seed"])))
        return
    torch.set_num_threads(cfg["threads"])
    load = wait_for_quiet(cfg["max_wait_s"])
    cfg["peak_gflop_s"] = matmul_peak(cfg["peak_matmul_n"])
    cfg["peak_load"] = load
    print(f"fp32 matmul peak, {cfg['threads']} threads: {cfg['peak_gflop_s']:.1f} GFLOP/s", flush=True)

    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in cfg["shapes"]:
            print(f"{name}: building ours and its transformers twin ...", flush=True)
            t0 = time.perf_counter()
            runs[name] = bench_shape(name, cfg, cfg["peak_gflop_s"], Path(tmp))
            print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    cfg["peak_gflop_s_after"] = matmul_peak(cfg["peak_matmul_n"])
    print(f"fp32 matmul peak again: {cfg['peak_gflop_s_after']:.1f} GFLOP/s", flush=True)
    if cfg["memory"]:
        for name in cfg["shapes"]:
            print(f"{name}: peak memory, one process per model ...", flush=True)
            runs[name]["memory"] = {which: measure_memory(name, which, cfg) for which in ("ours", "hf")}
    print_report(cfg, runs)

    versions = ("scratchlm", "torch", "transformers", "safetensors")
    record = {**run_info("bench_train", versions), "config": cfg, "runs": runs}
    append_result(RESULTS, record)


if __name__ == "__main__":
    main()
