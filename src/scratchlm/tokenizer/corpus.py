"""Reading corpora of any size: paths to files, files to blocks cut where no chunk crosses, and chunk
counting spread over processes. The shell around the pure `pretokenize` functions.

A cut is *verified* for the split pattern: a window of text around it must split into exactly the same
chunks whole as in two halves, so counting (or encoding) blocks gives the counts (or ids) of the whole file.
"""

from __future__ import annotations

import glob
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer.pretokenize import GPT2_PATTERN, GPT4_PATTERN, count_chunks, split_text

# Files are cut into blocks of about this many bytes, each read, counted or encoded on its own.
BLOCK_BYTES = 4 << 20
# Inputs smaller than this are counted in-process: starting workers would cost more than it saves.
PARALLEL_MIN_BYTES = 8 << 20
# Text on each side of a candidate cut that must split the same whole and halved.
WINDOW = 256
# How far past the nominal end of a block to look for a verified cut before settling for any whitespace.
SEARCH_BYTES = 16 << 20
BUILTIN_PATTERNS = (GPT2_PATTERN, GPT4_PATTERN)
TEXT_SUFFIXES = {".txt", ".md", ".py", ".json", ".jsonl", ".csv", ".tsv", ".rst", ".html"}


@dataclass(frozen=True)
class Block:
    """A byte range of a file that starts and ends on verified cuts."""

    path: str
    start: int
    end: int


def is_safe_cut(before: str, after: str, patterns: Sequence[str], specials: Sequence[str] = ()) -> bool:
    """Whether `before|after` splits into the same chunks whole as in two parts, for every pattern, and no
    special token spans the cut.

    >>> is_safe_cut("one.\\n", "two", [GPT2_PATTERN]), is_safe_cut("one\\n\\n", "two", [GPT2_PATTERN])
    (True, False)
    """
    whole = before + after
    for special in specials:
        start = whole.find(special, max(0, len(before) - len(special) + 1))
        if start != -1 and start < len(before) < start + len(special):
            return False
    for pattern in patterns:
        if split_text(whole, pattern) != split_text(before, pattern) + split_text(after, pattern):
            return False
    return True


def plan_blocks(
    path: Path,
    block_bytes: int = BLOCK_BYTES,
    patterns: Sequence[str] = BUILTIN_PATTERNS,
    specials: Sequence[str] = (),
) -> list[Block]:
    """Cut a file into blocks of about `block_bytes` at verified cuts, reading only near each cut."""
    size = path.stat().st_size
    blocks: list[Block] = []
    start = 0
    with path.open("rb") as f:
        while start < size:
            end = start + block_bytes
            end = size if end >= size else _next_cut(f, end, size, patterns, specials)
            blocks.append(Block(str(path), start, end))
            start = end
    return blocks


def _next_cut(f, pos: int, size: int, patterns: Sequence[str], specials: Sequence[str]) -> int:
    """The first verified cut after `pos`; candidates sit next to ASCII whitespace.
    Text with no verified cut within SEARCH_BYTES is cut at the first candidate instead (which can
    change the one chunk at the cut); text without whitespace runs on to EOF."""
    fallback = -1
    scanned = 0
    while pos < size and scanned < SEARCH_BYTES:
        f.seek(max(0, pos - WINDOW * 4))
        head = f.read(min(pos, WINDOW * 4))
        piece = f.read(1 << 16)
        tail = f.read(WINDOW * 4)
        for i in _candidates(piece):
            cut = pos + i
            before = (head + piece[:i])[-WINDOW * 4 :].decode("utf-8", "replace")[-WINDOW:]
            after = (piece[i:] + tail)[: WINDOW * 4].decode("utf-8", "replace")[:WINDOW]
            if is_safe_cut(before, after, patterns, specials):
                return cut
            if fallback == -1:
                fallback = cut
        pos += len(piece)
        scanned += len(piece)
    if pos >= size:
        return size  # the rest of the file is one block
    if fallback != -1:
        return fallback
    return _next_cut(f, pos, size, patterns, specials)


def _candidates(data: bytes) -> list[int]:
    """Offsets next to ASCII whitespace (so UTF-8 characters stay whole), in order: before or after any
    whitespace byte (GPT-2 cuts a CRLF file between \r and \n, and a line of words before a space)."""
    spaces = b" \t\n\r\x0b\x0c"
    return sorted(
        {i + d for i, b in enumerate(data) if b in spaces for d in (0, 1)} & set(range(1, len(data)))
    )


def read_block(block: Block) -> str:
    with open(block.path, "rb") as f:
        f.seek(block.start)
        data = f.read(block.end - block.start)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = block.start + exc.start
        raise ScratchLMError(f"{block.path}: not valid UTF-8 (byte offset {offset})") from None


def iter_text_blocks(
    text: str, block_chars: int = BLOCK_BYTES, patterns: Sequence[str] = BUILTIN_PATTERNS, specials=()
) -> Iterator[str]:
    """Cut one long in-memory text at verified cuts, to count or encode it in parallel."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + block_chars, n)
        while end < n:
            if (text[end - 1].isspace() or text[end].isspace()) and is_safe_cut(
                text[max(0, end - WINDOW) : end], text[end : end + WINDOW], patterns, specials
            ):
                break
            end += 1
        yield text[start:end]
        start = end


def process_context() -> BaseContext:
    """fork on Linux: workers start in milliseconds and scripts need no `if __name__ == "__main__"` guard
    (the workers run only regex code, never torch); spawn elsewhere, where fork is unsafe or missing."""
    return get_context("fork" if sys.platform == "linux" else "spawn")


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files, directories (recursively: text files by suffix, skipping hidden and cache directories) and
    glob patterns to a list of readable files, each once, in the order given (a directory's files
    sorted); a missing path is an error."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in TEXT_SUFFIXES
                and not any(
                    part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts
                )
            )
            if not found:
                kinds = ", ".join(sorted(TEXT_SUFFIXES))
                raise ScratchLMError(f"{path}: directory holds no text files ({kinds})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif any(ch in str(item) for ch in "*?["):
            matched = sorted(Path(p) for p in glob.glob(str(item), recursive=True) if Path(p).is_file())
            if not matched:
                raise ScratchLMError(f"{item}: the pattern matches no file")
            files.extend(matched)
        elif path.exists():
            raise ScratchLMError(f"{path}: not a regular file")
        else:
            raise ScratchLMError(f"{path}: no such file or directory")
    unique = list({f.resolve(): f for f in files}.values())  # a file named twice is read once
    for f in unique:
        if not os.access(f, os.R_OK):
            raise ScratchLMError(f"{f}: permission denied")
    return unique


def _count_block(block: Block, pattern: str, specials: Sequence[str]) -> Counter[str]:
    return count_chunks([read_block(block)], pattern, specials)


def _workers(workers: int | None, jobs: int) -> int:
    if workers is not None and workers < 1:
        raise ScratchLMError(f"workers must be at least 1, got {workers}")
    return max(1, min(workers or os.cpu_count() or 1, jobs))


def count_chunks_in_files(
    paths: Iterable[str | os.PathLike],
    pattern: str,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    block_bytes: int = BLOCK_BYTES,
    specials: Sequence[str] = (),
) -> Counter[str]:
    """Count the chunks of files of any size: blocks of `block_bytes`, spread over `workers` processes.

    `on_progress(n_bytes)` is called as blocks finish. Memory holds a few blocks plus the unique chunks.
    """
    blocks = [b for f in expand_inputs(paths) for b in plan_blocks(f, block_bytes, [pattern], specials)]
    total = sum(b.end - b.start for b in blocks)
    workers = _workers(workers, len(blocks))
    counts: Counter[str] = Counter()
    if workers == 1 or total < PARALLEL_MIN_BYTES:
        parts: Iterable[Counter[str]] = (_count_block(b, pattern, specials) for b in blocks)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, mp_context=process_context())
        parts = pool.map(_count_block, blocks, [pattern] * len(blocks), [specials] * len(blocks))
    try:
        for block, part in zip(blocks, parts):
            counts.update(part)
            if on_progress:
                on_progress(block.end - block.start)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return counts


def count_chunks_in_texts(
    texts: Sequence[str], pattern: str, specials: Sequence[str] = (), workers: int | None = None
) -> Counter[str]:
    """Count the chunks of in-memory texts; large inputs go to worker processes in batches of about
    BLOCK_BYTES (long texts cut at verified cuts, short ones grouped)."""
    total = sum(map(len, texts))
    if total < PARALLEL_MIN_BYTES or _workers(workers, 2) == 1:
        return count_chunks(texts, pattern, specials)
    batches: list[list[str]] = [[]]
    size = 0
    for text in texts:
        blocks = (
            iter_text_blocks(text, BLOCK_BYTES, [pattern], specials) if len(text) > BLOCK_BYTES else [text]
        )
        for block in blocks:
            if size + len(block) > BLOCK_BYTES and batches[-1]:
                batches.append([])
                size = 0
            batches[-1].append(block)
            size += len(block)
    counts: Counter[str] = Counter()
    with ProcessPoolExecutor(_workers(workers, len(batches)), mp_context=process_context()) as pool:
        for part in pool.map(count_chunks, batches, [pattern] * len(batches), [specials] * len(batches)):
            counts.update(part)
    return counts
