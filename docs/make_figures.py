"""Draw the guides' figures (docs/img/*.png) from what was measured: the benchmarks' recorded results
(benchmarks/results/*.jsonl, the latest full run of each), the data loader's own windows, and a finished demo.

    python docs/make_figures.py                    # every figure the recorded results allow
    python docs/make_figures.py --demo runs/demo   # also the demo's report as a screenshot (needs chromium)

Nothing here measures anything: rerun a benchmark to change a number, then this to redraw it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from scratchlm.train.plots import pyplot, save_figure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"


def latest(bench: str) -> dict | None:
    """The last record of a benchmark that was not a --quick smoke run."""
    path = RESULTS / f"{bench}.jsonl"
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    full = [r for r in records if not r.get("config", {}).get("quick")]
    return full[-1] if full else None


def source(record: dict) -> str:
    return f"{record['bench']}, {record['date'][:10]}, {record['machine']['cpu_count']} cores"


def label_bars(ax, bars, spec: str) -> None:
    for bar in bars:
        ax.annotate(
            format(bar.get_height(), spec),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def tokenizer_training(plt) -> Path | None:
    record = latest("bench_tokenizer")
    if record is None:
        return None
    sizes = sorted(record["training"], key=int)
    kinds = (
        ("ours_c_s", "ours (C merge core)"),
        ("ours_python_s", "ours (pure Python)"),
        ("hf_file_s", "HF tokenizers"),
    )
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.26
    for k, (key, name) in enumerate(kinds):
        xs = [i + (k - 1) * width for i in range(len(sizes))]
        bars = ax.bar(xs, [record["training"][s][key] for s in sizes], width, label=name)
        label_bars(ax, bars, ".1f")
    ax.set_xticks(range(len(sizes)), [f"vocab {int(s):,}" for s in sizes])
    ax.set_ylabel("seconds to train (median)")
    ax.set_title(f"byte-level BPE training, end to end from a file ({source(record)})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, IMG / "tokenize-training.png")


def sample_windows(plt) -> Path:
    """The data loader's first windows of a sentence at two strides: inputs and their shifted targets."""
    from scratchlm.data.loader import create_dataloader
    from scratchlm.tokenizer import Tokenizer

    tokenizer = Tokenizer.gpt2()
    text = "In the heart of the city stood the old library, a relic from a bygone era."
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, stride in zip(axes, (4, 2)):
        loader = create_dataloader(
            text, tokenizer, context_length=4, stride=stride, batch_size=3, shuffle=False
        )
        inputs, targets = next(iter(loader))
        for row, (x, y) in enumerate(zip(inputs.tolist(), targets.tolist())):
            start = row * stride
            for col, (i, t) in enumerate(zip(x, y)):
                for offset, token, color, top in (
                    (0, i, "#9ecae1", 2 * row),
                    (1, t, "#fdae6b", 2 * row + 0.9),
                ):
                    ax.add_patch(plt.Rectangle((start + col + offset, -top - 0.85), 0.96, 0.8, color=color))
                    label = tokenizer.decode([token]).strip() or "␣"
                    ax.text(
                        start + col + offset + 0.48, -top - 0.45, label, ha="center", va="center", fontsize=7
                    )
        ax.set_xlim(-0.2, 2 * stride + 5.2)
        ax.set_ylim(-6.2, 0.2)
        ax.set_title(f"context_length=4, stride={stride}", fontsize=9)
        ax.axis("off")
    fig.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#9ecae1", "#fdae6b")],
        labels=["inputs", "targets (inputs shifted by one)"],
        loc="lower center",
        ncol=2,
        fontsize=8,
    )
    fig.suptitle("the first three windows create_dataloader gives, one per pair of rows", fontsize=9)
    return save_figure(fig, IMG / "sample-windows.png")


def generation_speed(plt) -> Path | None:
    record = latest("bench_generate")
    if record is None:
        return None
    threads = max(record["runs"], key=int)
    runs = record["runs"][threads]
    shapes = list(runs)
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.2 * len(shapes), 3.6))
    for ax, shape in zip(axes if len(shapes) > 1 else [axes], shapes):
        r = runs[shape]
        names = ["ours\ncache", "HF\ncache", "ours\nno cache", "HF\nno cache"]
        keys = ["ours_cached_tok_s", "hf_cached_tok_s", "ours_uncached_tok_s", "hf_uncached_tok_s"]
        bars = ax.bar(names, [r[k] for k in keys], color=["#3182bd", "#9ecae1", "#e6550d", "#fdae6b"])
        label_bars(ax, bars, ".0f")
        ax.axhline(
            r["ceiling_tok_s"], color="k", linestyle="--", linewidth=1, label="memory-bandwidth ceiling"
        )
        ax.set_title(f"{shape}, {threads} threads", fontsize=9)
        ax.set_ylabel("new tokens/s (median)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"greedy generation, fp32 ({source(record)})", fontsize=9)
    return save_figure(fig, IMG / "generate-speed.png")


def finetune_results(plt) -> Path | None:
    spam, instruct = latest("bench_finetune"), latest("bench_finetune_instruct")
    if spam is None or instruct is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = list(spam["runs"])
    bars = left.bar(names, [100 * spam["runs"][n]["test_accuracy"] for n in names], color="#3182bd")
    label_bars(left, bars, ".2f")
    left.axhline(100 * spam["runs"][names[0]]["majority_accuracy"], color="k", linestyle=":", linewidth=1)
    left.set_ylim(80, 100.5)
    left.set_ylabel("test accuracy, % (dotted: always 'ham')")
    left.set_title(f"SMS spam ({source(spam)})", fontsize=9)
    runs = instruct["runs"]
    names = list(runs)
    before = [runs[n]["test_response_ppl"]["before"] for n in names]
    after = [runs[n]["test_response_ppl"]["after"] for n in names]
    xs = range(len(names))
    right.bar([x - 0.2 for x in xs], before, 0.4, label="before", color="#bdbdbd")
    label_bars(right, right.bar([x + 0.2 for x in xs], after, 0.4, label="after", color="#e6550d"), ".0f")
    right.set_yscale("log")
    right.set_xticks(list(xs), [n.replace(", ", ",\n") for n in names], fontsize=7)
    right.set_ylabel("test response perplexity (log)")
    right.set_title(f"instruction tuning ({source(instruct)})", fontsize=9)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    return save_figure(fig, IMG / "finetune-results.png")


def serve_scaling(plt) -> Path | None:
    record = latest("bench_serve")
    if record is None:
        return None
    levels = record["levels"]
    streams = [lv["concurrency"] for lv in levels]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(streams, [lv["tok_s"] for lv in levels], "o-", label="continuous batching (measured)")
    one = levels[0]["tok_s"] / levels[0]["concurrency"]
    ax.plot(streams, [one * s for s in streams], ":", color="gray", label="perfect scaling")
    for lv in levels:
        ax.annotate(
            f"{lv['vs_one_stream']:.2f}x",
            (lv["concurrency"], lv["tok_s"]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("generated tokens/s, all streams")
    ax.set_title(f"scratchlm serve, {record['config']['model']} ({source(record)})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, IMG / "serve-scaling.png")


def demo_report(run: Path) -> Path | None:
    """A screenshot of the top of a finished demo's report.html."""
    sys.path.insert(0, str(ROOT))
    from tests.browser import CHROMIUM, DRIVER, chromium, render_page

    if not (CHROMIUM and DRIVER and importlib.util.find_spec("selenium")):
        print("no chromium, chromedriver or selenium: the report screenshot is skipped")
        return None
    with chromium(1000, 1600) as browser:
        render_page(browser, run / "report.html", IMG / "demo-report.png")
    return IMG / "demo-report.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo", type=Path, help="a finished `scratchlm demo` output directory")
    args = parser.parse_args(argv)
    IMG.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    made = [
        f(plt)
        for f in (tokenizer_training, sample_windows, generation_speed, finetune_results, serve_scaling)
    ]
    if args.demo:
        made.append(demo_report(args.demo))
    for path in made:
        if path is not None:
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
