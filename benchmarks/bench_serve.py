"""A bounded load test of `scratchlm serve` on loopback: 1, 4 and 8 concurrent streams.

    python -m benchmarks.bench_serve [--model DIR|gpt2] [--shape small] [--concurrency 1 4 8]
                                     [--requests 16] [--max-tokens 64] [--max-batch 8] [--threads 2]

The server runs in this process (uvicorn in a thread, the engine in another), the clients are threads
speaking raw HTTP with `stream: true` (server-sent events), each request a different prompt, greedy,
`ignore_eos` so every request produces exactly `--max-tokens` tokens. Without `--model`, a randomly
initialised GPT of `--shape` (default `small`: 6 layers, 384 wide, GPT-2's vocabulary, 30 M parameters) and
GPT-2's tokenizer: speed does not depend on the weights' values.

Per concurrency level: aggregate generated tokens/s over the level's wall time, per-request latency and
time to first token (p50, p95), errors; and the ratio of aggregate tokens/s to one stream's. Goal (issue 6):
8 concurrent streams reach >= 3x the aggregate tokens/s of one stream, with zero errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlparse

import torch

from benchmarks.common import ROOT, append_result, print_table, run_info, wait_for_quiet
from scratchlm import config as configs
from scratchlm.model.gpt import GPT
from scratchlm.serve.app import Service
from scratchlm.serve.engine import Engine
from scratchlm.serve.openai_api import Limits
from scratchlm.serve.server import BackgroundServer
from scratchlm.tokenizer import Tokenizer

PROMPTS = [
    "The history of the city begins",
    "def parse_arguments(argv):",
    "In the morning the market was",
    "Dear committee members, I am writing",
    "The experiment showed that the",
    "Once upon a time, in a village",
    "import numpy as np\n",
    "The main reasons for the decline were",
]


def stream_one(url: str, prompt: str, max_tokens: int) -> dict:
    """One streamed completion; seconds to the first token and to the end, tokens received."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    body = json.dumps(
        {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True}
    )
    t0 = time.perf_counter()
    first = None
    tokens = 0
    error = None
    try:
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            return {"error": f"HTTP {response.status}: {response.read()[:200]!r}"}
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                error = chunk["error"]["message"]
                break
            for choice in chunk["choices"]:
                if choice.get("finish_reason") is None:
                    tokens += 1
                    if first is None:
                        first = time.perf_counter() - t0
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    out = {"ttft_s": first, "latency_s": time.perf_counter() - t0, "tokens": tokens}
    if error:
        out["error"] = error
    return out


def run_level(url: str, concurrency: int, requests: int, max_tokens: int) -> dict:
    results: list[dict] = []
    lock = threading.Lock()
    jobs = list(range(requests))

    def worker() -> None:
        while True:
            with lock:
                if not jobs:
                    return
                i = jobs.pop()
            result = stream_one(url, PROMPTS[i % len(PROMPTS)] + f" ({i})", max_tokens)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if "error" not in r]
    tokens = sum(r["tokens"] for r in ok)

    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")

    latencies = [r["latency_s"] for r in ok]
    ttfts = [r["ttft_s"] for r in ok if r["ttft_s"] is not None]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "wall_s": wall,
        "tokens": tokens,
        "tok_s": tokens / wall,
        "latency_p50_s": statistics.median(latencies) if latencies else float("nan"),
        "latency_p95_s": pct(latencies, 0.95),
        "ttft_p50_s": statistics.median(ttfts) if ttfts else float("nan"),
        "ttft_p95_s": pct(ttfts, 0.95),
        "errors": len(results) - len(ok),
        "error_examples": [r["error"] for r in results if "error" in r][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a model directory or Hub name (default: a random --shape model)")
    parser.add_argument("--shape", default="small", choices=["tiny", "small", "gpt2-small"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-wait", type=float, default=60.0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        from scratchlm.formats.model_files import load_model

        model, tokenizer = load_model(args.model)
        name = args.model
    else:
        torch.manual_seed(0)
        preset = {"tiny": configs.tiny, "small": configs.small, "gpt2-small": configs.gpt2_small}[args.shape]
        model, tokenizer, name = GPT(preset(dropout=0.0)).eval(), Tokenizer.gpt2(), f"random {args.shape}"
    params = sum(p.numel() for p in model.parameters())
    quiet = wait_for_quiet(args.max_wait)
    engine = Engine(model, tokenizer, max_batch=args.max_batch, max_queue=256).start()
    service = Service(engine, tokenizer, "bench")
    rows = []
    with BackgroundServer(service, limits=Limits(token_timeout_s=600)) as url:
        stream_one(url, "warm up", 4)
        for level in args.concurrency:
            row = run_level(url, level, args.requests, args.max_tokens)
            rows.append(row)
            print(f"  {level} streams: {row['tok_s']:.1f} tok/s, {row['errors']} errors", flush=True)
    base = next((r["tok_s"] for r in rows if r["concurrency"] == 1), None)
    table = [
        ["streams", "requests", "tok/s", "× 1 stream", "latency p50", "p95", "TTFT p50", "p95", "errors"]
    ]
    for r in rows:
        ratio = r["tok_s"] / base if base else float("nan")
        r["vs_one_stream"] = ratio
        table.append(
            [
                r["concurrency"],
                r["requests"],
                r["tok_s"],
                ratio,
                r["latency_p50_s"],
                r["latency_p95_s"],
                r["ttft_p50_s"],
                r["ttft_p95_s"],
                r["errors"],
            ]
        )
    note = (
        f"model: {name} ({params / 1e6:.1f} M parameters), {args.max_tokens} tokens per request "
        f"(ignore_eos), greedy, max batch {args.max_batch}, {args.threads} threads; latency and time to "
        "first token in seconds"
        "\ngoal: 8 streams >= 3x one stream's aggregate tokens/s, zero errors"
    )
    print_table("scratchlm serve on loopback", table, note, digits=2)
    if not args.no_save:
        record = run_info("bench_serve", ["torch", "fastapi", "uvicorn"])
        record["config"] = {**vars(args), "model": name, "params": params, "quiet": quiet}
        record["levels"] = rows
        append_result(ROOT / "benchmarks/results/bench_serve.jsonl", record)


if __name__ == "__main__":
    main()
