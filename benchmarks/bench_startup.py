"""How long `scratchlm pretrain` waits between its data being ready and its first step, per precision.

Before the first step a run measures the device's peak FLOP/s for MFU (`train.perf.peak_flops`). On a CPU
without fp16 (or bf16) units a fixed 2048^2 probe in that dtype took tens of seconds; the growing, bounded
probe stops at a small size. Each precision runs `--repeats` times, each in a fresh process (a one-time setup
counts, as it does for a user), on the `tiny` config with GPT-2's tokenizer and 1 MB of standard-library text.

    python -m benchmarks.bench_startup [--repeats 3] [--precisions fp32,bf16,fp16]

Printed per precision: the probe's seconds, the size it stopped at, and the seconds from the data being
ready (the model and optimizer built, just before the probe) to the first step's loss being computed, as
median and range; the first step's own duration is the dtype's arithmetic, shown apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, append_result, print_table, run_info

# Runs in a fresh process: wraps the probe and the loss to time them, then runs the real CLI for 2 steps.
DRIVER = """
import json, sys, time
import scratchlm.train.pretrain as p
from scratchlm.cli.main import main
marks = {}
probe, loss = p.peak_flops, p.next_token_loss
def timed_probe(device, precision):
    marks["ready"] = time.time()
    out = probe(device, precision)
    marks["probe_s"], marks["source"] = time.time() - marks["ready"], out[1]
    return out
def first_loss(*a, **k):
    marks.setdefault("step", time.time())
    return loss(*a, **k)
p.peak_flops, p.next_token_loss = timed_probe, first_loss
out, precision, text = sys.argv[1:4]
rc = main(["pretrain", "-c", "configs/tiny.yaml", "-o", out, "-q", "--data.inputs", text,
           "--train.precision", precision, "--train.max_steps", "1", "--train.eval_interval", "100"])
step = next(json.loads(line) for line in open(out + "/metrics.jsonl") if '"loss"' in line)
print(json.dumps({"rc": rc, "probe_s": marks["probe_s"], "source": marks["source"],
                  "to_first_step_s": marks["step"] - marks["ready"],
                  "first_step_s": step["time"] - marks["step"]}))
"""


def measure(precision: str, text: Path, workdir: Path, i: int) -> dict:
    out = workdir / f"{precision}-{i}"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), precision, str(text)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{precision}: the run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    args = parser.parse_args()
    from scratchlm.data.corpora import stdlib_files

    rows = [["precision", "probe s (median)", "probe range", "probe size", "ready->step 1 s", "step 1 s"]]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "text.txt"
        text.write_text("".join(p.read_text(encoding="utf-8") for p in stdlib_files(1_000_000)))
        for precision in args.precisions.split(","):
            runs = [measure(precision, text, Path(tmp), i) for i in range(args.repeats)]
            probe = [r["probe_s"] for r in runs]
            start = [r["to_first_step_s"] for r in runs]
            results[precision] = runs
            rows.append(
                [
                    precision,
                    statistics.median(probe),
                    f"{min(probe):.2f}-{max(probe):.2f}",
                    runs[0]["source"].split()[2],
                    statistics.median(start),
                    statistics.median(r["first_step_s"] for r in runs),
                ]
            )
    print_table(
        "pretrain: data ready -> first step",
        rows,
        f"{args.repeats} fresh processes each; 'ready->step 1' holds the probe; 'step 1': the dtype's speed",
        digits=2,
    )
    append_result(
        ROOT / "benchmarks" / "results" / "bench_startup.jsonl",
        {**run_info("bench_startup", ["torch"]), "runs": results},
    )


if __name__ == "__main__":
    main()
