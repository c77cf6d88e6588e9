"""nanoGPT itself as the peer of the CPU speedrun: its own `train.py` from a checkout (`--nanogpt DIR`),
run with the README's CPU recipe for shakespeare_char, its schedule stretched to the budget, and its
checkpoint scored on the very validation windows scratchlm's runs are scored on.

The checkout is copied into a work directory first (nothing is written into it). Its data preparation is
done here as its `data/shakespeare_char/prepare.py` does it (sorted characters, uint16 ids, the first 90% of
the text to train on, meta.pkl), from the text we pass, so nothing is downloaded. One change to the copy:
`train.py` seeds with 1337 always; the copy seeds with the run's seed, so several seeds can be averaged.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The nanoGPT README's CPU command for shakespeare_char (max_iters and lr_decay_iters set per budget).
README_CPU = [
    "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
    "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128",
    "--dropout=0.0",
]  # fmt: skip
CONTEXT = 64
STEP_TIME = re.compile(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", re.M)


def prepare(checkout: Path, work: Path, text: str, seed: int) -> Path:
    """A copy of the checkout in `work` with shakespeare_char's data made from `text`, seeded with `seed`."""
    if not (checkout / "train.py").is_file() or not (checkout / "model.py").is_file():
        raise SystemExit(f"--nanogpt {checkout}: not a nanoGPT checkout (no train.py and model.py)")
    copy = work / "nanogpt"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git", "out*"))
    source = (copy / "train.py").read_text()
    if "torch.manual_seed(1337 + seed_offset)" not in source:
        raise SystemExit(f"--nanogpt {checkout}: train.py does not seed as expected; cannot vary the seed")
    (copy / "train.py").write_text(source.replace("1337 + seed_offset", f"{seed} + seed_offset"))
    data = copy / "data" / "shakespeare_char"
    data.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    cut = int(len(text) * 0.9)
    for name, part in (("train", text[:cut]), ("val", text[cut:])):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(data / f"{name}.bin")
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    (data / "meta.pkl").write_bytes(pickle.dumps(meta))
    return copy


def run(copy: Path, max_iters: int, threads: int, out: str = "out-bench") -> tuple[float, list[float]]:
    """Train for `max_iters` (the schedule sized to them; one evaluation and checkpoint at the end);
    return (wall seconds, the per-iteration times nanoGPT printed)."""
    args = [f"--max_iters={max_iters}", f"--lr_decay_iters={max_iters}", f"--eval_interval={max_iters}"]
    args += ["--always_save_checkpoint=True", f"--out_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "train.py", *README_CPU, *args], cwd=copy, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"nanoGPT's train.py failed:\n{done.stderr[-2000:]}")
    times = [float(ms) / 1000 for it, ms in STEP_TIME.findall(done.stdout) if int(it) > 0]
    return seconds, times


def step_seconds(copy: Path, threads: int, iters: int = 40) -> float:
    """nanoGPT's own median step time here (a short run; its first iterations and evaluations left out)."""
    _, times = run(copy, iters, threads, out="out-calibrate")
    return statistics.median(times[5:-1] or times)


def score(copy: Path, out: str, text: str) -> dict:
    """The checkpoint's loss over every validation window at stride CONTEXT, as bits per byte."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", copy / "model.py")
    nanogpt_model = importlib.util.module_from_spec(spec)  # the checkout's model.py, under its own name
    spec.loader.exec_module(nanogpt_model)
    checkpoint = torch.load(copy / out / "ckpt.pt", map_location="cpu", weights_only=False)
    model = nanogpt_model.GPT(nanogpt_model.GPTConfig(**checkpoint["model_args"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()}
    model.load_state_dict(state)
    model.eval()
    meta = pickle.loads((copy / "data" / "shakespeare_char" / "meta.pkl").read_bytes())
    val_text = text[int(len(text) * 0.9) :]
    ids = torch.tensor([meta["stoi"][c] for c in val_text])
    starts = list(range(0, len(ids) - CONTEXT, CONTEXT))  # the windows scratchlm's iter_sequential scores
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(starts), 32):
            batch = starts[i : i + 32]
            x = torch.stack([ids[s : s + CONTEXT] for s in batch])
            y = torch.stack([ids[s + 1 : s + CONTEXT + 1] for s in batch])
            _, loss = model(x, y)
            total += loss.item() * y.numel()
            count += y.numel()
    loss = total / count
    return {
        "val_loss": loss,
        "val_bpb": loss * len(ids) / len(val_text.encode("utf-8")) / math.log(2),
        "iter": checkpoint.get("iter_num"),
        "params": sum(p.numel() for p in model.parameters()),
    }
