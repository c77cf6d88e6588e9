"""Tokenizer benchmark: BPE training time, merge-loop speedup, compression and encoding speed, side by side
with HF `tokenizers` and `tiktoken` in one process, on an offline corpus (Python's sources + `--data-dir`).

    python -m benchmarks.bench_tokenizer [--data-dir DIR] [--mb 30] [--vocab-sizes 8192 32768] [--quick]

Prints a table and appends one JSON line to benchmarks/results/bench_tokenizer.jsonl. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import tiktoken
import tiktoken.load
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

import scratchlm
from benchmarks.common import MB, ROOT, append_result, print_table, race, run_info
from scratchlm.data.corpora import stdlib_files
from scratchlm.tokenizer import EOT, GPT2_PATTERN, bpe, gpt2
from scratchlm.tokenizer.byte_alphabet import str_to_bytes
from scratchlm.tokenizer.corpus import iter_text_blocks
from scratchlm.tokenizer.pretokenize import count_chunks
from scratchlm.tokenizer.train import available_core, merge_learner

RESULTS = ROOT / "benchmarks" / "results" / "bench_tokenizer.jsonl"


# ---- corpus --------------------------------------------------------------------------------------------
def _py_sources(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        try:
            yield path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue


def build_corpus(budget: int, heldout_bytes: int, data_dir: Path | None) -> tuple[str, str, dict[str, int]]:
    """(training text, held-out text, training bytes per source). Documents are joined by newlines.

    Held-out: `stdlib_files` from `total - heldout_bytes` on (about the last `heldout_bytes`) and the last 10%
    of tinyshakespeare. Training, in this order until `budget` bytes: the other stdlib files, the data-dir
    files present, the stdlib's own tests, this venv's site-packages (stdlib_files alone is ~13 MB).
    """
    stdlib = stdlib_files(1 << 40)
    total = sum(p.stat().st_size for p in stdlib)
    held = stdlib_files(heldout_bytes, skip_bytes=total - heldout_bytes)
    heldout = [p.read_text(encoding="utf-8") for p in held]
    data: list[str] = []
    names = ("tinyshakespeare.txt", "the-verdict.txt", "instruction-data.json", "sms_spam/sms_spam.tsv")
    for path in [data_dir / name for name in names if data_dir and (data_dir / name).is_file()]:
        data.append(path.read_text(encoding="utf-8"))
        if path.name == "tinyshakespeare.txt":
            cut = data[-1].rfind("\n", 0, int(0.9 * len(data[-1]))) + 1
            data[-1], tail = data[-1][:cut], data[-1][cut:]
            heldout.append(tail)
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
        while taken < budget and (text := next(texts, None)) is not None:
            docs.append(text)
            sizes[name] = sizes.get(name, 0) + len(text.encode("utf-8"))
            taken += len(text.encode("utf-8"))
    return "\n".join(docs), "\n".join(heldout), sizes


# ---- 1. training wall time -----------------------------------------------------------------------------
def train_ours(path: Path, vocab_size: int, core: str) -> scratchlm.Tokenizer:
    return scratchlm.train_bpe(
        files=[path], vocab_size=vocab_size, pattern="gpt2", special_tokens=[EOT], core=core
    )


def _hf_bpe(vocab_size: int) -> tuple[HFTokenizer, trainers.BpeTrainer]:
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,
        initial_alphabet=alphabet,
        special_tokens=[EOT],
        show_progress=False,
    )
    return tok, trainer


def train_hf_file(path: Path, vocab_size: int) -> HFTokenizer:
    tok, trainer = _hf_bpe(vocab_size)
    tok.train([str(path)], trainer)
    return tok


def train_hf_blocks(text: str, vocab_size: int) -> HFTokenizer:
    """HF on the documents ours sees: blocks cut where no chunk can span (ours counts the file that way)."""
    tok, trainer = _hf_bpe(vocab_size)
    tok.train_from_iterator(iter_text_blocks(text, 1 << 20), trainer)
    return tok


def bench_training(path: Path, vocab_size: int, repeats: int) -> tuple[dict, dict]:
    """Median seconds per trainer, and the trained tokenizers (reused by the quality section)."""
    fns: dict[str, Callable[[], object]] = {}
    if available_core() == "c":
        fns["ours_c"] = lambda: train_ours(path, vocab_size, "c")
    fns["ours_python"] = lambda: train_ours(path, vocab_size, "python")
    fns["hf_file"] = lambda: train_hf_file(path, vocab_size)
    results = race(fns, dict.fromkeys(fns, repeats))
    row: dict = {f"{name}_s": round(sec, 3) for name, (sec, _) in results.items()}
    for name in ("ours_c", "ours_python"):
        if name in fns:
            row[f"{name}/hf"] = round(row[f"{name}_s"] / row["hf_file_s"], 3)
    trained = {name: tok for name, (_, tok) in results.items()}
    if "ours_c" in trained:
        row["c_equals_python"] = trained["ours_c"].ranks == trained["ours_python"].ranks
    return row, trained


# ---- 2. merge loop vs the naive trainer ----------------------------------------------------------------
def _new_token_fn() -> Callable[[int, int], int]:
    """train.py's callback: a merge that re-spells an existing token reuses its id."""
    vocab = [bytes([b]) for b in range(256)]
    index = {b: i for i, b in enumerate(vocab)}

    def new_token(a: int, b: int) -> int:
        token = vocab[a] + vocab[b]
        if token not in index:
            index[token] = len(vocab)
            vocab.append(token)
        return index[token]

    return new_token


def bench_merge_loop(text: str, subset_bytes: int, num_merges: int, repeats: int) -> dict:
    """Naive vs incremental (Python and C) merge learning on the same chunk counts and merge count."""
    subset = next(iter_text_blocks(text, subset_bytes))
    words: Counter[bytes] = Counter()
    for chunk, n in count_chunks([subset], GPT2_PATTERN, [EOT]).items():
        words[chunk.encode("utf-8")] += n
    learners: dict[str, Callable] = {"naive": bpe.learn_merges_naive, "python": bpe.learn_merges}
    if available_core() == "c":
        learners["c"] = merge_learner("c")
    fns = {name: (lambda f=f: f(words, num_merges, _new_token_fn())) for name, f in learners.items()}
    row: dict = {
        "subset_mb": len(subset.encode("utf-8")) / MB,
        "unique_chunks": len(words),
        "merges": num_merges,
    }
    row["runs"] = max(5, repeats)  # the naive loop is the long run, timed once; the others are short
    results = race(fns, {name: 1 if name == "naive" else row["runs"] for name in fns})
    row.update({f"{name}_s": sec for name, (sec, _) in results.items()})
    row["identical_merges"] = all(out == results["naive"][1] for _, out in results.values())
    row.update({f"speedup_{name}": row["naive_s"] / row[f"{name}_s"] for name in learners if name != "naive"})
    return row


# ---- 3. quality: bytes per token on held-out text ------------------------------------------------------
def bench_quality(text: str, heldout: str, vocab_size: int, trained: dict) -> dict:
    ours = trained.get("ours_c") or trained["ours_python"]
    t0 = time.perf_counter()
    hf = {"hf_file": trained["hf_file"], "hf_blocks": train_hf_blocks(text, vocab_size)}
    row: dict = {"hf_blocks_train_s": time.perf_counter() - t0, "ours_vocab": ours.vocab_size}
    n_bytes = len(heldout.encode("utf-8"))
    row["ours"] = n_bytes / len(ours.encode_ordinary(heldout))
    for name, tok in hf.items():
        row[f"{name}_vocab"] = tok.get_vocab_size()
        row[name] = n_bytes / len(tok.encode(heldout).ids)
        row[f"ours/{name}"] = row["ours"] / row[name]
        hf_tokens = {str_to_bytes(t) for t in tok.get_vocab() if t != EOT}
        row[f"shared_tokens_{name}"] = len(hf_tokens & ours.ranks.keys()) / len(ours.ranks)
    return row


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
    specials = {EOT: 50256}
    return tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials, explicit_n_vocab=50257
    )


def bench_encoding(heldout: str, trained: scratchlm.Tokenizer, reference_bytes: int, repeats: int) -> dict:
    ours, tk = scratchlm.Tokenizer.gpt2(), gpt2_tiktoken()
    fns: dict[str, Callable[[], object]] = {
        "tiktoken": lambda: tk.encode_ordinary(heldout),
        "ours_encode_ordinary": lambda: ours.encode_ordinary(heldout),
        "ours_encode": lambda: ours.encode(heldout),
        "trained_encode_ordinary": lambda: trained.encode_ordinary(heldout),
    }
    for fn in fns.values():  # warm up: the first call builds each tokenizer's tiktoken core
        fn()
    results = race(fns, dict.fromkeys(fns, max(5, repeats)))
    mb = len(heldout.encode("utf-8")) / MB
    row: dict = {"heldout_mb": mb, "runs": max(5, repeats)}
    row.update({f"{name}_mb_s": mb / sec for name, (sec, _) in results.items()})
    ids = {name: out for name, (_, out) in results.items()}
    row["ids_equal_tiktoken"] = ids["ours_encode_ordinary"] == ids["ours_encode"] == ids["tiktoken"]
    for name in ("ours_encode_ordinary", "ours_encode"):
        row[f"{name}/tiktoken"] = row[f"{name}_mb_s"] / row["tiktoken_mb_s"]

    # The reference encoder caches chunk results per Tokenizer object: a fresh one per run starts it cold.
    piece = next(iter_text_blocks(heldout, reference_bytes))
    fresh = lambda: scratchlm.Tokenizer(ours.ranks, ours.pattern, ours.special_tokens)  # noqa: E731
    times, ref_ids = [], None
    for _ in range(repeats):
        tok = fresh()
        t0 = time.perf_counter()
        ref_ids = tok.encode(piece, method="reference")
        times.append(time.perf_counter() - t0)
    row["reference_mb"] = len(piece.encode("utf-8")) / MB
    row["reference_cold_cache_mb_s"] = row["reference_mb"] / statistics.median(times)
    row["reference_ids_equal_fast"] = ref_ids == ours.encode(piece)
    return row


# ---- report --------------------------------------------------------------------------------------------
def print_report(cfg: dict, train: dict, m: dict, quality: dict, enc: dict) -> None:
    rows = [["vocab", "ours C s", "ours Python s", "HF s", "C/HF", "Python/HF", "C == Python"]]
    for v, r in train.items():
        c = [r.get("ours_c_s", "-"), r.get("ours_c/hf", "-"), r.get("c_equals_python", "-")]
        rows.append([v, c[0], r["ours_python_s"], r["hf_file_s"], c[1], r["ours_python/hf"], c[2]])
    note = "goal C/HF <= 2, hard bar <= 3. HF trains on all cores; ours counts chunks on all cores."
    print_table(
        f"1. training from a {cfg['train_mb']} MB file, end to end (median of {cfg['repeats']})", rows, note
    )

    rows = [["learner", "seconds", "speedup vs naive", "runs"], ["naive", m["naive_s"], "1x", 1]]
    for k in ("python", "c"):
        if f"{k}_s" in m:
            rows.append([k, m[f"{k}_s"], f"{m[f'speedup_{k}']:.0f}x", m["runs"]])
    title = f"{m['merges']} merges over the {m['unique_chunks']} unique chunks of {m['subset_mb']:.2f} MB"
    print_table(
        f"2. merge learning, equal work: {title}",
        rows,
        f"identical merges: {m['identical_merges']}; goal >= 50x",
    )

    rows = [
        ["vocab", "ours", "HF file", "HF blocks", "ours/HF file", "ours/HF blocks", "tokens shared w/ blocks"]
    ]
    for v, r in quality.items():
        shared = f"{r['shared_tokens_hf_blocks']:.1%}"
        rows.append(
            [v, r["ours"], r["hf_file"], r["hf_blocks"], r["ours/hf_file"], r["ours/hf_blocks"], shared]
        )
    note = (
        "need ours within 1% of HF. Apples-to-apples is 'HF blocks': train_from_iterator on the ~1 MB\n"
        "blocks ours counts, so it sees the same chunks. 'HF file' reads the file line by line and never\n"
        "sees chunks that span lines (newline + indentation), so it cannot learn those tokens."
    )
    title = f"3. quality: bytes per token on {cfg['heldout_mb']} MB held-out (higher is better)"
    print_table(title, rows, note)

    rows = [["encoder", "MB/s", "vs tiktoken"], ["tiktoken gpt2 encode_ordinary", enc["tiktoken_mb_s"], 1.0]]
    for name in ("ours_encode_ordinary", "ours_encode"):
        rows.append([f"ours gpt2 {name[5:]}", enc[f"{name}_mb_s"], enc[f"{name}/tiktoken"]])
    rows.append(
        [f"ours trained {cfg['vocab_sizes'][-1]} encode_ordinary", enc["trained_encode_ordinary_mb_s"], "-"]
    )
    rows.append(["ours gpt2 reference (pure Python) *", enc["reference_cold_cache_mb_s"], "-"])
    note = (
        f"goal >= 0.9x tiktoken. * on {enc['reference_mb']:.2f} MB, a fresh Tokenizer each run (its chunk"
        f" cache starts cold), median of {cfg['repeats']}.\nids equal: fast == encode == tiktoken:"
        f" {enc['ids_equal_tiktoken']}; reference == fast: {enc['reference_ids_equal_fast']}"
    )
    title = f"{enc['heldout_mb']:.2f} MB held-out (median of {enc['runs']}, alternating order)"
    print_table(f"4. encoding, one thread, {title}", rows, note)


def parse_config() -> dict:
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
    q = args.quick
    return {
        "quick": q,
        "mb": args.mb or (3 if q else 30),
        "vocab_sizes": args.vocab_sizes or ([1024] if q else [8192, 32768]),
        "repeats": args.repeats or (1 if q else 3),
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "heldout_target_mb": 1 if q else 3,
        "merge_loop": {"subset_mb": 0.25 if q else 1, "merges": 64 if q else 512},
        "reference_mb": 0.1 if q else 0.3,
    }


def main() -> None:
    cfg = parse_config()
    data_dir = Path(cfg["data_dir"]) if cfg["data_dir"] else None
    text, heldout, sizes = build_corpus(int(cfg["mb"] * MB), int(cfg["heldout_target_mb"] * MB), data_dir)
    if EOT in heldout:
        raise SystemExit(f"the held-out text spells {EOT!r}: it would not be plain text for every encoder")
    cfg["train_mb"] = round(sum(sizes.values()) / MB, 2)
    cfg["train_mb_by_source"] = {k: round(x / MB, 2) for k, x in sizes.items()}
    cfg["heldout_mb"] = round(len(heldout.encode("utf-8")) / MB, 2)
    cfg["eot_in_training_text"] = text.count(EOT)
    print(
        f"corpus: {cfg['train_mb']} MB training {cfg['train_mb_by_source']}; {cfg['heldout_mb']} MB held-out"
    )

    train, quality = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text(text, encoding="utf-8")
        for v in cfg["vocab_sizes"]:
            print(f"training and quality, vocab {v} ...", flush=True)
            train[v], trained = bench_training(path, v, cfg["repeats"])
            quality[v] = bench_quality(text, heldout, v, trained)
    print("merge loop vs naive ...", flush=True)
    merge = bench_merge_loop(
        text, int(cfg["merge_loop"]["subset_mb"] * MB), cfg["merge_loop"]["merges"], cfg["repeats"]
    )
    print("encoding ...", flush=True)
    last = trained.get("ours_c") or trained["ours_python"]
    enc = bench_encoding(heldout, last, int(cfg["reference_mb"] * MB), cfg["repeats"])
    print_report(cfg, train, merge, quality, enc)

    numbers = {"training": train, "merge_loop": merge, "bytes_per_token": quality, "encoding": enc}
    versions = ("scratchlm", "torch", "tiktoken", "tokenizers", "regex")
    record = {**run_info("bench_tokenizer", versions), "bpe_core": available_core(), "config": cfg, **numbers}
    append_result(RESULTS, record)


if __name__ == "__main__":
    main()
