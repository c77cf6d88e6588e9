"""Writing token shards, nanoGPT style: list documents, split them into train/val, tokenize file blocks in
worker processes and stream the ids into `data.shards`' format. Knows nothing of sampling; never loads torch.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import regex
from tqdm.auto import tqdm

from scratchlm.data.shards import FORMAT, FORMAT_VERSION, META_FILE, TOKENIZER_DIR, shard_dtype
from scratchlm.errors import ScratchLMError
from scratchlm.files import write_json
from scratchlm.formats.tokenizer_files import AnyTokenizer, load_tokenizer, save_tokenizer
from scratchlm.tokenizer.corpus import (
    BUILTIN_PATTERNS,
    PARALLEL_MIN_BYTES,
    expand_inputs,
    plan_blocks,
    process_context,
    read_block,
)

DEFAULT_SHARD_TOKENS = 100_000_000
# Files are tokenized in blocks of about this many bytes (cut at safe points): small enough that a few
# large files still spread evenly over the workers, large enough that handing a block over costs little.
BLOCK_BYTES = 1 << 20
# A separator match is found even when it spans two blocks, if it is at most this many characters long.
MAX_SEPARATOR_CHARS = 4096


class Document(NamedTuple):
    """A byte range of a file: one unit of the train/validation split, followed by the separator id."""

    path: str
    start: int
    end: int


class Segment(NamedTuple):
    """The part of one document that lies inside one block."""

    start: int
    end: int
    is_val: bool
    ends_document: bool


class Task(NamedTuple):
    """One block of a file for one worker: read it once, encode each segment."""

    path: str
    start: int
    end: int
    segments: list[Segment]


# ---- planning: documents, the split, tasks ------------------------------------------------------------
def find_documents(
    files: Sequence[Path], doc_separator: str | regex.Pattern | None = None, block_bytes: int = BLOCK_BYTES
) -> tuple[list[Document], int]:
    """The non-empty documents of `files` in order, and how many empty ones were skipped.

    Without a separator each file is one document; a `str` separator is literal text, a compiled
    `regex.Pattern` a regex (matches of at most `MAX_SEPARATOR_CHARS` characters). Files are read in
    blocks, never whole."""
    docs: list[Document] = []
    empty = 0
    for path in files:
        ranges = [(0, path.stat().st_size)]
        if doc_separator is not None:
            ranges = _separated_ranges(path, doc_separator, block_bytes)
        for start, end in ranges:
            if end > start:
                docs.append(Document(str(path), start, end))
            else:
                empty += 1
    return docs, empty


def _separated_ranges(
    path: Path, separator: str | regex.Pattern, block_bytes: int
) -> Iterator[tuple[int, int]]:
    pattern = regex.compile(regex.escape(separator)) if isinstance(separator, str) else separator
    blocks = plan_blocks(path, block_bytes)
    doc_start = 0
    buf, buf_byte = "", 0  # text not yet passed, and the byte offset of its first character
    for k, block in enumerate(blocks):
        buf += read_block(block)
        is_last = k == len(blocks) - 1
        done_char, done_byte = 0, buf_byte
        for match in pattern.finditer(buf):
            if match.end() == match.start():
                continue  # an empty match separates nothing
            if match.end() == len(buf) and not is_last:
                break  # the match might grow with the next block: look again then
            start_byte = done_byte + len(buf[done_char : match.start()].encode("utf-8"))
            yield doc_start, start_byte
            doc_start = start_byte + len(match.group().encode("utf-8"))
            done_char, done_byte = match.end(), doc_start
        keep = max(done_char, len(buf) - MAX_SEPARATOR_CHARS)
        buf_byte = done_byte + len(buf[done_char:keep].encode("utf-8"))
        buf = buf[keep:]
    yield doc_start, path.stat().st_size


def split_documents(n_documents: int, val_fraction: float, seed: int = 0) -> list[bool]:
    """`is_val` per document: a seeded shuffle of the documents, then the first
    `round(n × val_fraction)` (at least one, and never all) go to validation.

    >>> split_documents(10, 0.2, seed=0)
    [False, False, False, False, True, False, True, False, False, False]
    """
    if val_fraction == 0 or n_documents < 2:
        return [False] * n_documents
    n_val = min(max(1, round(n_documents * val_fraction)), n_documents - 1)
    order = np.random.default_rng(seed).permutation(n_documents)
    is_val = [False] * n_documents
    for i in order[:n_val]:
        is_val[int(i)] = True
    return is_val


def cut_document(doc: Document, val_fraction: float) -> tuple[Document, Document]:
    """Cut one document at the line boundary nearest to `1 - val_fraction` of its bytes (at a character
    boundary when there is no newline within 1 MB), for a corpus that is a single document."""
    target = doc.start + round((doc.end - doc.start) * (1 - val_fraction))
    lo = max(doc.start + 1, target - (1 << 20))
    with open(doc.path, "rb") as f:
        f.seek(lo)
        window = f.read(min(doc.end - 1, target + (1 << 20)) - lo + 1)
    cuts = [lo + m.end() for m in regex.finditer(rb"\n", window) if doc.start < lo + m.end() < doc.end]
    if not cuts:  # any character boundary: a byte that is not a UTF-8 continuation byte
        cuts = [lo + i for i, b in enumerate(window) if b & 0xC0 != 0x80 and doc.start < lo + i < doc.end]
    if not cuts:
        raise ScratchLMError(
            f"{doc.path}: the only document is too short to split into train and validation; "
            "use val_fraction=0 or more text"
        )
    cut = min(cuts, key=lambda c: abs(c - target))
    return Document(doc.path, doc.start, cut), Document(doc.path, cut, doc.end)


def plan_tasks(
    docs: Sequence[Document],
    is_val: Sequence[bool],
    block_bytes: int = BLOCK_BYTES,
    patterns: Sequence[str] = BUILTIN_PATTERNS,
) -> Iterator[Task]:
    """Group documents (sorted by file, then offset) into per-block tasks, lazily: a big document spans
    several blocks (cuts verified for the tokenizer's split `patterns` make their ids concatenate to the
    document's ids), a block holds many small documents."""
    i = 0
    while i < len(docs):
        j = i
        while j < len(docs) and docs[j].path == docs[i].path:
            j += 1
        first = i  # the first document of this file not yet finished
        for block in plan_blocks(Path(docs[i].path), block_bytes, patterns):
            segments = []
            k = first
            while k < j and docs[k].start < block.end:
                lo, hi = max(docs[k].start, block.start), min(docs[k].end, block.end)
                if lo < hi:
                    segments.append(Segment(lo, hi, is_val[k], docs[k].end <= block.end))
                if docs[k].end <= block.end:
                    first = k + 1
                k += 1
            if segments:
                yield Task(block.path, block.start, block.end, segments)
        i = j


# ---- tokenizing and writing --------------------------------------------------------------------------
def encode_task(
    task: Task, tokenizer: AnyTokenizer, separator_id: int, dtype: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Encode a task's segments as ordinary text (corpus text never yields special ids), appending the
    separator after each document's last segment. Returns (train ids, val ids, bytes read)."""
    encode = getattr(tokenizer, "encode_ordinary", tokenizer.encode)
    with open(task.path, "rb") as f:
        f.seek(task.start)
        data = f.read(task.end - task.start)
    ids: dict[bool, list[int]] = {False: [], True: []}
    for seg in task.segments:
        raw = data[seg.start - task.start : seg.end - task.start]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScratchLMError(
                f"{task.path}: not valid UTF-8 (byte offset {seg.start + exc.start})"
            ) from None
        ids[seg.is_val] += encode(text)
        if seg.ends_document:
            ids[seg.is_val].append(separator_id)
    le = np.dtype(dtype).newbyteorder("<")
    return np.array(ids[False], dtype=le), np.array(ids[True], dtype=le), task.end - task.start


_worker: dict[str, Any] = {}


def _init_worker(tokenizer: AnyTokenizer, separator_id: int, dtype: str) -> None:
    _worker.update(tokenizer=tokenizer, separator_id=separator_id, dtype=dtype)


def _encode_in_worker(task: Task) -> tuple[np.ndarray, np.ndarray, int]:
    return encode_task(task, **_worker)


def _encode_all(
    tasks: Iterable[Task], tokenizer: AnyTokenizer, separator_id: int, dtype: str, workers: int
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Results in task order; at most 2 tasks per worker in flight, so memory holds a few blocks."""
    if workers == 1:
        for task in tasks:
            yield encode_task(task, tokenizer, separator_id, dtype)
        return
    ctx = process_context()
    with ProcessPoolExecutor(workers, ctx, _init_worker, (tokenizer, separator_id, dtype)) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(_encode_in_worker, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class ShardWriter:
    """Streams ids into `{split}_00000.bin`, … of `shard_tokens` ids each: each shard is written to a temp
    file, hashed on the way and renamed when complete."""

    def __init__(self, out_dir: Path, split: str, shard_tokens: int) -> None:
        self.out_dir, self.split, self.shard_tokens = out_dir, split, shard_tokens
        self.shards: list[dict] = []
        self._file = None

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self._file is None:
                self._path = self.out_dir / f"{self.split}_{len(self.shards):05d}.bin"
                self._tmp = self._path.with_name(self._path.name + ".tmp")
                self._file = self._tmp.open("wb")
                self._hash, self._n = hashlib.sha256(), 0
            room = self.shard_tokens - self._n
            data = ids[:room].tobytes()
            self._file.write(data)
            self._hash.update(data)
            self._n += min(room, len(ids))
            ids = ids[room:]
            if self._n == self.shard_tokens:
                self._finish()

    def close(self) -> list[dict]:
        if self._file is not None:
            self._finish()
        return self.shards

    def abort(self) -> None:
        """Remove what this writer wrote, so a failed run leaves no shard behind."""
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
        for shard in self.shards:
            (self.out_dir / shard["file"]).unlink(missing_ok=True)

    def _finish(self) -> None:
        self._file.close()
        os.replace(self._tmp, self._path)
        self.shards.append({"file": self._path.name, "tokens": self._n, "sha256": self._hash.hexdigest()})
        self._file = None


def prepare_shards(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    tokenizer: AnyTokenizer | str,
    out_dir: str | os.PathLike,
    *,
    val_fraction: float = 0.1,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    doc_separator: str | regex.Pattern | None = None,
    separator_id: int | None = None,
    workers: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = False,
    block_bytes: int = BLOCK_BYTES,
) -> dict:
    """Tokenize files (paths, directories, globs) into train/val shards in `out_dir`; returns the meta.

    `tokenizer` is a tokenizer or a spec for `load_tokenizer` ("gpt2", a directory). Each document's ids
    are followed by `separator_id` (default: the tokenizer's `<|endoftext|>`). `val_fraction` of the
    documents, chosen by a shuffle seeded with `seed`, go to validation (each split keeps the input
    order); a corpus of one document is cut at a line boundary instead, the first part train.
    `workers` processes tokenize (default: all cores when the input exceeds 8 MB, else in-process).
    Memory holds a few blocks and the list of documents, never the corpus's ids.
    """
    start_time = time.perf_counter()
    inputs = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    spec = str(tokenizer) if isinstance(tokenizer, str | os.PathLike) else None
    tok = tokenizer if spec is None else load_tokenizer(spec)
    if not 0 <= val_fraction < 1:
        raise ScratchLMError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if shard_tokens < 1:
        raise ScratchLMError(f"shard_tokens must be at least 1, got {shard_tokens}")
    separator_id = tok.eot_id if separator_id is None else separator_id
    if separator_id is None:
        raise ScratchLMError(
            "the tokenizer has no <|endoftext|> token to end documents with: pass a separator id "
            "(--separator-id), or train the tokenizer with that special token"
        )
    if not 0 <= separator_id < tok.vocab_size:
        raise ScratchLMError(
            f"separator id {separator_id} is outside the vocabulary (0..{tok.vocab_size - 1})"
        )

    out = Path(out_dir)
    # Each file once (a file named twice would interleave its blocks), and never our own output.
    files = list({f.resolve(): f for f in expand_inputs(inputs)}.values())
    files = [f for f in files if out.resolve() not in f.resolve().parents]
    if not files:
        raise ScratchLMError(f"no input files outside the output directory {out}")
    _fresh_out_dir(out, overwrite)
    docs, n_empty = find_documents(files, doc_separator, block_bytes)
    if not docs:
        raise ScratchLMError(f"all {n_empty} document(s) are empty: nothing to tokenize")
    split_note = None
    if len(docs) == 1 and val_fraction > 0:
        docs = list(cut_document(docs[0], val_fraction))
        is_val = [False, True]
        split_note = (
            f"one document, cut at a line boundary (byte {docs[1].start:,}): first part train, rest val"
        )
    else:
        is_val = split_documents(len(docs), val_fraction, seed)
    n_bytes = sum(d.end - d.start for d in docs)
    if workers is None:
        workers = (os.cpu_count() or 1) if n_bytes >= PARALLEL_MIN_BYTES else 1
    dtype = shard_dtype(tok.vocab_size)

    writers = {split: ShardWriter(out, split, shard_tokens) for split in ("train", "val")}
    patterns = [tok.pattern] if isinstance(getattr(tok, "pattern", None), str) else BUILTIN_PATTERNS
    tasks = plan_tasks(docs, is_val, block_bytes, patterns)
    bar = tqdm(total=n_bytes, desc="tokenizing", unit="B", unit_scale=True, disable=not show_progress)
    tokenize_start = time.perf_counter()
    try:
        for train_ids, val_ids, done in _encode_all(tasks, tok, separator_id, dtype, max(1, workers)):
            writers["train"].write(train_ids)
            writers["val"].write(val_ids)
            bar.update(done)
        shards = {split: writer.close() for split, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        bar.close()
    tokenize_seconds = time.perf_counter() - tokenize_start
    save_tokenizer(tok, out / TOKENIZER_DIR)

    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dtype": dtype,
        "byte_order": "little",
        "vocab_size": tok.vocab_size,
        "separator_id": separator_id,
        "tokenizer": {
            "spec": spec,
            "name": getattr(tok, "name", type(tok).__name__),
            "fingerprint": getattr(tok, "fingerprint", None),
            "dir": TOKENIZER_DIR,
        },
        "inputs": [str(p) for p in inputs],
        "files": len(files),
        "bytes": n_bytes,
        "doc_separator": _describe_separator(doc_separator),
        "val_fraction": val_fraction,
        "seed": seed,
        "split_note": split_note,
        "documents": {"train": len(docs) - sum(is_val), "val": sum(is_val), "empty_skipped": n_empty},
        "tokens": {split: sum(s["tokens"] for s in shards[split]) for split in shards},
        "shard_tokens": shard_tokens,
        "shards": shards,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start_time, 3),  # all of it, tokenizer load and save too
        "tokenize_seconds": round(tokenize_seconds, 3),  # reading, tokenizing and writing shards
    }
    write_json(out / META_FILE, meta)  # last, and atomic: a directory with meta.json is complete
    return meta


def _fresh_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ScratchLMError(f"{out}: exists and is not a directory")
    old = []
    if out.is_dir():
        old = [p for p in [out / META_FILE] if p.exists()] + sorted(out.glob("train_*.bin*"))
        old += sorted(out.glob("val_*.bin*"))
    if old and not overwrite:
        raise ScratchLMError(
            f"{out}: already holds shards ({old[0].name}); choose another --out, or --overwrite"
        )
    for path in old:  # meta.json first: a run that stops halfway never looks complete
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _describe_separator(separator: str | regex.Pattern | None) -> dict | None:
    if separator is None:
        return None
    return {"literal": separator} if isinstance(separator, str) else {"regex": separator.pattern}
