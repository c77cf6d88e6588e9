"""Tokenizer benchmark: BPE training time, merge-loop speedup, compression and encoding speed, side by side
with HF `tokenizers` and `tiktoken` in one process, on an offline corpus (Python's sources + `--data-dir`).

    python -m benchmarks.bench_tokenizer [--data-dir DIR] [--mb 30] [--vocab-sizes 8192 32768] [--quick]

Prints a table and appends one JSON line to benchmarks/results/bench_tokenizer.jsonl. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import tiktoken
import tiktoken.load
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

import scratchlm
from scratchlm.data.corpora import stdlib_files
from scratchlm.tokenizer import EOT, GPT2_PATTERN, bpe, gpt2
from scratchlm.tokenizer.pretokenize import count_chunks, iter_text_blocks
from scratchlm.tokenizer.train import available_core

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_tokenizer.jsonl"
MB = 1_000_000


# ---- timing --------------------------------------------------------------------------------------------
def race(fns: dict[str, Callable[[], object]], repeats: dict[str, int]) -> dict[str, tuple[float, object]]:
    """Run each function `repeats[name]` times, alternating the order every round; (median s, last result)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    out: dict[str, object] = {}
    names = list(fns)
    for r in range(max(repeats.values())):
        for name in names if r % 2 == 0 else names[::-1]:
            if r < repeats[name]:
                t0 = time.perf_counter()
                out[name] = fns[name]()
                times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), out[name]) for name in names}


# ---- corpus --------------------------------------------------------------------------------------------
def _py_sources(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        try:
            yield path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def build_corpus(budget: int, heldout_bytes: int, data_dir: Path | None) -> tuple[str, str, dict[str, int]]:
    """(training text, held-out text, training bytes per source). Documents are joined by newlines.

    Held-out: the last `heldout_bytes` of `stdlib_files` and the last 10% of tinyshakespeare. Training, in
    order until `budget` bytes: the other stdlib files, the data-dir files, stdlib tests, this venv's code.
    """
    stdlib = stdlib_files(1 << 40)
    total = sum(p.stat().st_size for p in stdlib)
    held = stdlib_files(heldout_bytes, skip_bytes=total - heldout_bytes)
    heldout = [p.read_text(encoding="utf-8") for p in held]
    data: list[str] = []
    if data_dir is not None:
        shakespeare = (data_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")
        cut = shakespeare.rfind("\n", 0, int(0.9 * len(shakespeare))) + 1
        heldout.append(shakespeare[cut:])
        data = [shakespeare[:cut]]
        for name in ("the-verdict.txt", "instruction-data.json", "sms_spam/sms_spam.tsv"):
            data.append((data_dir / name).read_text(encoding="utf-8"))
    held_set = set(held)  # stdlib_files' ranges can share the file at the boundary: keep the sets disjoint
    sources: list[tuple[str, Iterator[str]]] = [
        ("stdlib", (p.read_text(encoding="utf-8") for p in stdlib if p not in held_set)),
        ("data_dir", iter(data)),
        ("stdlib_tests", _py_sources(Path(sysconfig.get_paths()["stdlib"]) / "test")),
        ("venv_site_packages", _py_sources(Path(sysconfig.get_paths()["purelib"]))),
    ]
    docs: list[str] = []
    sizes: dict[str, int] = {}
    taken = 0
    for name, texts in sources:
        for text in texts:
            if taken >= budget:
                break
            n = len(text.encode("utf-8"))
            docs.append(text)
            sizes[name] = sizes.get(name, 0) + n
            taken += n
    return "\n".join(docs), "\n".join(heldout), sizes


# ---- 1. training wall time -----------------------------------------------------------------------------
def train_ours(path: Path, vocab_size: int, core: str) -> scratchlm.Tokenizer:
    return scratchlm.train_bpe(
        files=[path], vocab_size=vocab_size, pattern="gpt2", special_tokens=[EOT], core=core
    )


def _hf_bpe(vocab_size: int) -> tuple[HFTokenizer, trainers.BpeTrainer]:
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[EOT],
        show_progress=False,
    )
    return tok, trainer


def train_hf_file(path: Path, vocab_size: int) -> HFTokenizer:
    tok, trainer = _hf_bpe(vocab_size)
    tok.train([str(path)], trainer)
    return tok


def train_hf_blocks(text: str, vocab_size: int) -> HFTokenizer:
    tok, trainer = _hf_bpe(vocab_size)
    tok.train_from_iterator(iter_text_blocks(text, 1 << 20), trainer)
    return tok


def bench_training(path: Path, vocab_sizes: list[int], repeats: int) -> tuple[dict, dict]:
    """Median seconds per trainer and vocab size, and the trained tokenizers (for the quality section)."""
    numbers: dict[str, dict] = {}
    trained: dict[int, dict] = {}
    for v in vocab_sizes:
        fns: dict[str, Callable[[], object]] = {}
        if available_core() == "c":
            fns["ours_c"] = lambda v=v: train_ours(path, v, "c")
        fns["ours_python"] = lambda v=v: train_ours(path, v, "python")
        fns["hf_file"] = lambda v=v: train_hf_file(path, v)
        results = race(fns, dict.fromkeys(fns, repeats))
        row = {name: round(sec, 3) for name, (sec, _) in results.items()}
        for name in ("ours_c", "ours_python"):
            if name in row:
                row[f"{name}/hf"] = round(row[name] / row["hf_file"], 3)
        trained[v] = {name: tok for name, (_, tok) in results.items()}
        if "ours_c" in trained[v]:
            row["c_equals_python"] = trained[v]["ours_c"].ranks == trained[v]["ours_python"].ranks
        numbers[str(v)] = row
        print(f"  vocab {v}: " + ", ".join(f"{k}={x}" for k, x in row.items()), flush=True)
    return numbers, trained


# ---- 2. merge loop vs the naive trainer ----------------------------------------------------------------
def _new_token_fn() -> Callable[[int, int], int]:
    """train.py's callback: a merge that re-spells an existing token reuses its id."""
    vocab = [bytes([b]) for b in range(256)]
    index = {b: i for i, b in enumerate(vocab)}

    def new_token(a: int, b: int) -> int:
        token = vocab[a] + vocab[b]
        existing = index.get(token)
        if existing is not None:
            return existing
        index[token] = len(vocab)
        vocab.append(token)
        return len(vocab) - 1

    return new_token


def bench_merge_loop(text: str, subset_bytes: int, num_merges: int, repeats: int) -> dict:
    """Naive vs incremental (Python and C) merge learning on the same chunk counts and merge count."""
    subset = next(iter_text_blocks(text, subset_bytes))
    words: Counter[bytes] = Counter()
    for chunk, n in count_chunks([subset], GPT2_PATTERN, [EOT]).items():
        words[chunk.encode("utf-8")] += n
    learners: dict[str, Callable] = {"naive": bpe.learn_merges_naive, "python": bpe.learn_merges}
    if available_core() == "c":
        from scratchlm.tokenizer import _bpe_core

        learners["c"] = lambda w, n, nt: _bpe_core.learn_merges(list(w), list(w.values()), n, nt, 2)
    fns = {name: (lambda f=f: f(words, num_merges, _new_token_fn())) for name, f in learners.items()}
    # The naive loop is the long run: once. The fast ones are short: median of more repeats.
    results = race(fns, {name: 1 if name == "naive" else max(5, repeats) for name in fns})
    merges = {name: out for name, (_, out) in results.items()}
    row: dict = {
        "subset_bytes": len(subset.encode("utf-8")),
        "unique_words": len(words),
        "merges": num_merges,
    }
    row.update({f"{name}_s": round(sec, 4) for name, (sec, _) in results.items()})
    row["identical_merges"] = all(m == merges["naive"] for m in merges.values())
    for name in learners:
        if name != "naive":
            row[f"speedup_{name}"] = round(row["naive_s"] / row[f"{name}_s"], 1)
    print("  " + ", ".join(f"{k}={x}" for k, x in row.items()), flush=True)
    return row


# ---- 3. quality: bytes per token on held-out text ------------------------------------------------------
def bench_quality(text: str, heldout: str, trained: dict[int, dict]) -> dict:
    n_bytes = len(heldout.encode("utf-8"))
    numbers: dict[str, dict] = {}
    for v, toks in trained.items():
        ours = toks.get("ours_c", toks["ours_python"])
        t0 = time.perf_counter()
        hf_blocks = train_hf_blocks(text, v)
        row: dict = {"hf_blocks_train_s": round(time.perf_counter() - t0, 3)}
        row["ours_vocab"] = ours.vocab_size
        row["hf_vocab"] = toks["hf_file"].get_vocab_size()
        row["ours"] = n_bytes / len(ours.encode_ordinary(heldout))
        row["hf_file"] = n_bytes / len(toks["hf_file"].encode(heldout).ids)
        row["hf_blocks"] = n_bytes / len(hf_blocks.encode(heldout).ids)
        for name in ("hf_file", "hf_blocks"):
            row[f"ours/{name}"] = row["ours"] / row[name]
        row = {k: round(x, 4) if isinstance(x, float) else x for k, x in row.items()}
        numbers[str(v)] = row
        print(f"  vocab {v}: " + ", ".join(f"{k}={x}" for k, x in row.items()), flush=True)
    return numbers


# ---- 4. encoding MB/s, one thread ----------------------------------------------------------------------
def gpt2_tiktoken() -> tiktoken.Encoding:
    """tiktoken's gpt2 encoding, built offline from the packaged data-gym files."""
    encoder_json, vocab_bpe = gpt2.gpt2_files()
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe),
        encoder_json_file=str(encoder_json),
        vocab_bpe_hash=gpt2.VOCAB_BPE_SHA256,
        encoder_json_hash=gpt2.ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={EOT: 50256},
        explicit_n_vocab=50257,
    )


def bench_encoding(heldout: str, trained: scratchlm.Tokenizer, reference_bytes: int, repeats: int) -> dict:
    ours, tk = scratchlm.Tokenizer.gpt2(), gpt2_tiktoken()
    mb = len(heldout.encode("utf-8")) / MB
    fns: dict[str, Callable[[], object]] = {
        "tiktoken": lambda: tk.encode_ordinary(heldout),
        "ours_encode_ordinary": lambda: ours.encode_ordinary(heldout),
        "ours_encode": lambda: ours.encode(heldout),
        "trained_encode_ordinary": lambda: trained.encode_ordinary(heldout),
    }
    for fn in fns.values():  # warm up: builds the tiktoken objects on first use
        fn()
    results = race(fns, dict.fromkeys(fns, max(5, repeats)))
    row: dict = {"heldout_mb": round(mb, 3)}
    row.update({f"{name}_mb_s": round(mb / sec, 2) for name, (sec, _) in results.items()})
    ids = {name: out for name, (_, out) in results.items()}
    row["ids_equal_tiktoken"] = ids["ours_encode_ordinary"] == ids["ours_encode"] == ids["tiktoken"]
    for name in ("ours_encode_ordinary", "ours_encode"):
        row[f"{name}/tiktoken"] = round(row[f"{name}_mb_s"] / row["tiktoken_mb_s"], 3)

    # The reference encoder caches chunk results per Tokenizer: a fresh object each repeat keeps it cold.
    piece = next(iter_text_blocks(heldout, reference_bytes))
    ref = race(
        {
            "reference": lambda: scratchlm.Tokenizer(ours.ranks, ours.pattern, ours.special_tokens).encode(
                piece, method="reference"
            )
        },
        {"reference": repeats},
    )["reference"]
    row["reference_mb"] = round(len(piece.encode("utf-8")) / MB, 3)
    row["reference_cold_cache_mb_s"] = round(len(piece.encode("utf-8")) / MB / ref[0], 3)
    row["reference_ids_equal_fast"] = ref[1] == ours.encode(piece)
    print("  " + ", ".join(f"{k}={x}" for k, x in row.items()), flush=True)
    return row


# ---- report --------------------------------------------------------------------------------------------
def print_table(cfg: dict, train: dict, merge: dict, quality: dict, enc: dict) -> None:
    n = cfg["repeats"]
    print(f"\n== 1. training, end to end from a {cfg['train_mb']} MB file: seconds (median of {n}) ==")
    print(
        f"{'vocab':>7} {'ours C':>8} {'ours Py':>8} {'HF':>8} {'C/HF':>6} {'Py/HF':>6}   goal C/HF <= 2, bar <= 3"
    )
    for v, r in train.items():
        c, c_hf = r.get("ours_c", float("nan")), r.get("ours_c/hf", float("nan"))
        print(
            f"{v:>7} {c:8.2f} {r['ours_python']:8.2f} {r['hf_file']:8.2f} {c_hf:6.2f} {r['ours_python/hf']:6.2f}"
        )
    print(
        f"\n== 2. merge loop on equal work ({merge['subset_bytes'] / MB:.2f} MB subset, {merge['unique_words']} unique"
        f" chunks, {merge['merges']} merges; identical merges: {merge['identical_merges']}) =="
    )
    print(
        f"naive {merge['naive_s']:.2f} s (1 run) | Python heap {merge['python_s']:.4f} s ({merge['speedup_python']}x)",
        end="",
    )
    if "c_s" in merge:
        print(f" | C {merge['c_s']:.4f} s ({merge['speedup_c']}x)", end="")
    print("   goal >= 50x")
    print(f"\n== 3. quality: bytes per token on {cfg['heldout_mb']} MB held-out text (higher is better) ==")
    print(
        f"{'vocab':>7} {'ours':>7} {'HF file':>8} {'HF blocks':>9} {'ours/file':>9} {'ours/blocks':>11}   need within 1%"
    )
    for v, r in quality.items():
        print(
            f"{v:>7} {r['ours']:7.3f} {r['hf_file']:8.3f} {r['hf_blocks']:9.3f} {r['ours/hf_file']:9.4f}"
            f" {r['ours/hf_blocks']:11.4f}"
        )
    print(
        "  apples-to-apples: 'HF blocks' (train_from_iterator on the same ~1 MB blocks ours counted) sees the\n"
        "  same chunks as ours; 'HF file' reads line by line, so it never sees chunks that span lines\n"
        "  (newline + indentation) and cannot learn those tokens."
    )
    print(
        f"\n== 4. encoding, one thread: MB/s on {enc['heldout_mb']} MB held-out (median of {max(5, n)}, alternating) =="
    )
    print(f"tiktoken gpt2 encode_ordinary       {enc['tiktoken_mb_s']:8.2f}")
    for name in ("ours_encode_ordinary", "ours_encode"):
        label = f"ours gpt2 {name.removeprefix('ours_')}"
        print(
            f"{label:<36}{enc[f'{name}_mb_s']:8.2f}  ({enc[f'{name}/tiktoken']:.3f}x tiktoken, goal >= 0.9)"
        )
    print(
        f"ours trained {cfg['vocab_sizes'][-1]} encode_ordinary{'':<8}{enc['trained_encode_ordinary_mb_s']:8.2f}"
    )
    print(
        f"ours gpt2 reference (pure Python)   {enc['reference_cold_cache_mb_s']:8.3f}  on {enc['reference_mb']} MB,"
        f" fresh Tokenizer per run (cold chunk cache), median of {n}"
    )
    print(
        f"ids: fast == encode == tiktoken: {enc['ids_equal_tiktoken']}; reference == fast: {enc['reference_ids_equal_fast']}"
    )


def run_info() -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    versions = {}
    for pkg in ("scratchlm", "torch", "tiktoken", "tokenizers", "regex"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "bench": "bench_tokenizer",
        "commit": git("rev-parse", "HEAD") or "unknown",
        "tracked_files_modified": None if dirty is None else bool(dirty),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "python": platform.python_version(),
        "versions": versions,
        "bpe_core": available_core(),
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=os.environ.get("SCRATCHLM_DATA_DIR"))
    p.add_argument("--mb", type=float, help="training corpus size in MB (default 30; --quick: 3)")
    p.add_argument("--vocab-sizes", type=int, nargs="+", help="default 8192 32768; --quick: 1024")
    p.add_argument("--repeats", type=int, help="default 3; --quick: 1")
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = p.parse_args()
    if args.data_dir is None and (ROOT.parent / "shared" / "data").is_dir():
        args.data_dir = ROOT.parent / "shared" / "data"
    if args.data_dir is not None and not args.data_dir.is_dir():
        p.error(f"--data-dir {args.data_dir}: not a directory")
    return args


def main() -> None:
    args = parse_args()
    q = args.quick
    cfg = {
        "quick": q,
        "mb": args.mb or (3 if q else 30),
        "vocab_sizes": args.vocab_sizes or ([1024] if q else [8192, 32768]),
        "repeats": args.repeats or (1 if q else 3),
        "heldout_target_mb": 1 if q else 3,
        "naive_subset_mb": 0.25 if q else 1,
        "naive_merges": 64 if q else 256,
        "reference_mb": 0.1 if q else 0.3,
        "data_dir": str(args.data_dir) if args.data_dir else None,
    }
    text, heldout, sizes = build_corpus(
        int(cfg["mb"] * MB), int(cfg["heldout_target_mb"] * MB), args.data_dir
    )
    cfg["train_mb"] = round(sum(sizes.values()) / MB, 2)
    cfg["train_mb_by_source"] = {k: round(x / MB, 2) for k, x in sizes.items()}
    cfg["heldout_mb"] = round(len(heldout.encode("utf-8")) / MB, 2)
    if EOT in heldout:
        raise SystemExit(f"held-out text spells {EOT!r}: bytes/token would not compare plain text")
    cfg["eot_in_training_text"] = text.count(EOT)
    print(
        f"corpus: {cfg['train_mb']} MB training {cfg['train_mb_by_source']}, {cfg['heldout_mb']} MB held-out"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text(text, encoding="utf-8")
        print("1. training wall time", flush=True)
        train, trained = bench_training(path, cfg["vocab_sizes"], cfg["repeats"])
    print("2. merge loop vs naive", flush=True)
    merge = bench_merge_loop(text, int(cfg["naive_subset_mb"] * MB), cfg["naive_merges"], cfg["repeats"])
    print("3. quality", flush=True)
    quality = bench_quality(text, heldout, trained)
    print("4. encoding", flush=True)
    big = trained[cfg["vocab_sizes"][-1]]
    enc = bench_encoding(
        heldout, big.get("ours_c", big["ours_python"]), int(cfg["reference_mb"] * MB), cfg["repeats"]
    )
    print_table(cfg, train, merge, quality, enc)

    record = {
        **run_info(),
        "config": cfg,
        "training_s": train,
        "merge_loop": merge,
        "bytes_per_token": quality,
        "encoding": enc,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(f"\nappended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
