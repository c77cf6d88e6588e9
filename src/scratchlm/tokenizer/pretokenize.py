"""Pre-tokenization: the split regex that cuts text into chunks before BPE, and chunk counting.

Counting reads big inputs in blocks (never a whole file at once) and in parallel processes. Knows nothing
about merges or ids.
"""

from __future__ import annotations

import glob
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import regex

from scratchlm.errors import ScratchLMError

# GPT-2's split (tiktoken's r50k form: possessive quantifiers, same chunks as the 2019 original).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's split (cl100k_base): case-insensitive contractions, digits in groups of at most three.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

# Files are cut into blocks of about this many bytes, each counted by one worker.
BLOCK_BYTES = 4 << 20
# Inputs smaller than this are counted in-process: starting workers would cost more than it saves.
PARALLEL_MIN_BYTES = 8 << 20


def resolve_pattern(pattern: str) -> str:
    """Return the regex for a pattern name ("gpt2", "gpt4") or check and return a custom regex."""
    pattern = PATTERNS.get(pattern, pattern)
    try:
        compile_pattern(pattern)
    except regex.error as exc:
        raise ScratchLMError(f"invalid split pattern {pattern!r}: {exc}") from None
    return pattern


@lru_cache(maxsize=8)
def compile_pattern(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def split_text(text: str, pattern: str) -> list[str]:
    """Cut text into chunks; BPE never merges across chunk boundaries.

    >>> split_text("Hello world's 2024!!", GPT2_PATTERN)
    ['Hello', ' world', "'s", ' 2024', '!!']
    >>> split_text("Hello world's 2024!!", GPT4_PATTERN)
    ['Hello', ' world', "'s", ' ', '202', '4', '!!']
    """
    return compile_pattern(pattern).findall(text)


def count_chunks(texts: Iterable[str], pattern: str, specials: Sequence[str] = ()) -> Counter[str]:
    """Count the chunks of in-memory texts; each text is split on its own, and special-token strings
    are cut out first so they never become part of a chunk.

    >>> count_chunks(["a b a<|endoftext|>b"], GPT2_PATTERN, ["<|endoftext|>"])
    Counter({'a': 1, ' b': 1, ' a': 1, 'b': 1})
    """
    counts: Counter[str] = Counter()
    find = compile_pattern(pattern).findall
    cut = _special_splitter(tuple(specials))
    for text in texts:
        for piece in cut(text) if cut else (text,):
            counts.update(find(piece))
    return counts


@lru_cache(maxsize=8)
def _special_splitter(specials: tuple[str, ...]) -> Callable[[str], list[str]] | None:
    if not specials:
        return None
    return regex.compile("|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))).split


@dataclass(frozen=True)
class Block:
    """A byte range of a file that starts and ends on a safe cut (see `find_cut`)."""

    path: str
    start: int
    end: int


_CUT_BYTES = regex.compile(rb"[!-~]\n[!-~]")
_CUT_TEXT = regex.compile(r"[!-~]\n[!-~]")
_ANY_LINE = regex.compile(rb"\n[^\n]")


def find_cut(data: bytes) -> int:
    r"""Offset just after the first single newline between two printable ASCII non-space bytes; -1 if none.

    Such a newline is a chunk of its own in the GPT-2 and GPT-4 splits, and nothing on either side looks
    across it, so blocks cut there count exactly like the whole file (a cut after a whitespace run would
    not: at a block's end `\s++$` would match it). Cutting at ASCII also keeps UTF-8 characters whole.
    Custom patterns are assumed to behave the same (documented).

    >>> find_cut(b"one.\ntwo"), find_cut(b"one\n\ntwo"), find_cut(b"one\n two")
    (5, -1, -1)
    """
    match = _CUT_BYTES.search(data)
    return match.start() + 2 if match else -1


def plan_blocks(path: Path, block_bytes: int = BLOCK_BYTES) -> list[Block]:
    """Cut a file into blocks of about `block_bytes` at safe points, reading only around each cut."""
    size = path.stat().st_size
    blocks: list[Block] = []
    start = 0
    with path.open("rb") as f:
        while start < size:
            end = start + block_bytes
            if end >= size:
                end = size
            else:
                end = _next_cut(f, end, size, block_bytes)
            blocks.append(Block(str(path), start, end))
            start = end
    return blocks


def _next_cut(f, pos: int, size: int, block_bytes: int) -> int:
    """The first safe cut at or after `pos`, widening the window up to EOF. Text with no safe cut for
    16 blocks (at least 16 MB; e.g. CJK without ASCII) is cut after any newline instead, which can
    change the one whitespace chunk at the cut."""
    window = 1 << 16
    while True:
        f.seek(pos)
        data = f.read(window)
        cut = find_cut(data)
        if cut == -1 and window >= max(16 * block_bytes, 1 << 24):
            match = _ANY_LINE.search(data)
            cut = match.start() + 1 if match else -1
        if cut != -1:
            return pos + cut
        if pos + len(data) >= size:
            return size
        window *= 2


def read_block(block: Block) -> str:
    with open(block.path, "rb") as f:
        f.seek(block.start)
        data = f.read(block.end - block.start)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = block.start + exc.start
        raise ScratchLMError(f"{block.path}: not valid UTF-8 (byte offset {offset})") from None


def _count_block(block: Block, pattern: str, specials: Sequence[str] = ()) -> Counter[str]:
    return count_chunks([read_block(block)], pattern, specials)


def process_context() -> BaseContext:
    """fork on Linux: workers start in milliseconds and scripts need no `if __name__ == "__main__"` guard
    (the workers run only regex code, never torch); spawn elsewhere, where fork is unsafe or missing."""
    return get_context("fork" if sys.platform == "linux" else "spawn")


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Turn files, directories (recursively, *.txt, *.md, *.py, *.json, *.jsonl, *.csv, *.tsv, *.rst, *.html)
    and glob patterns into a sorted list of existing files; a missing path is an error."""
    suffixes = {".txt", ".md", ".py", ".json", ".jsonl", ".csv", ".tsv", ".rst", ".html"}
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise ScratchLMError(f"{path}: directory holds no text files ({', '.join(sorted(suffixes))})")
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
    for f in files:
        if not os.access(f, os.R_OK):
            raise ScratchLMError(f"{f}: permission denied")
    return files


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
    files = expand_inputs(paths)
    blocks = [b for f in files for b in plan_blocks(f, block_bytes)]
    total = sum(b.end - b.start for b in blocks)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, min(workers, len(blocks)))
    counts: Counter[str] = Counter()
    if workers == 1 or total < PARALLEL_MIN_BYTES:
        for block in blocks:
            counts.update(_count_block(block, pattern, specials))
            if on_progress:
                on_progress(block.end - block.start)
        return counts
    with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
        for block, part in zip(
            blocks, pool.map(_count_block, blocks, [pattern] * len(blocks), [specials] * len(blocks))
        ):
            counts.update(part)
            if on_progress:
                on_progress(block.end - block.start)
    return counts


def iter_text_blocks(text: str, block_chars: int = BLOCK_BYTES) -> Iterator[str]:
    """Cut one long in-memory text at the same safe points as `find_cut`, to count it in parallel."""
    start, n = 0, len(text)
    while start < n:
        match = _CUT_TEXT.search(text, min(start + block_chars, n))
        end = match.start() + 2 if match else n
        yield text[start:end]
        start = end
