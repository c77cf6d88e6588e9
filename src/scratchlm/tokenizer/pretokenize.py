"""Pre-tokenization: the split regex that cuts text into chunks before BPE, and chunk counting.

Pure: text in, chunks and counts out. Files, blocks and processes live in `corpus.py`. Knows nothing
about merges or ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

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

# Letters (L) and numbers (N) assigned after Unicode 16 (CJK Extension J, Sidetic, Tai Yo, ...). The `regex`
# module knows them; tiktoken's engine (Rust's regex crate, Unicode 16 tables) and HF `tokenizers` do not,
# and split them as neither: as punctuation is split. The
# split here does the same, so the reference encoder and BPE training cut text exactly where tiktoken does
# (the fast path). Found by probing tiktoken on every code point; tests/tokenizer/test_pretokenize.py
# probes again every code point Python's own tables do not know.
NEWER_LETTERS = (
    (0x0558, 0x0558), (0x058B, 0x058C), (0x088F, 0x088F), (0x0C5C, 0x0C5C), (0x0CDC, 0x0CDC),
    (0x208F, 0x208F), (0x209D, 0x209F), (0xA7CE, 0xA7CF), (0xA7D2, 0xA7D2), (0xA7D4, 0xA7D4),
    (0xA7DD, 0xA7DD), (0xA7E2, 0xA7E2), (0xA7F1, 0xA7F1), (0xAB6C, 0xAB6D), (0x107BB, 0x107BF),
    (0x10940, 0x10959), (0x10EC5, 0x10EC7), (0x10ED9, 0x10EEE), (0x11B0A, 0x11B0A), (0x11DB0, 0x11DDB),
    (0x11DF1, 0x11DF1), (0x16EA0, 0x16EB8), (0x16EBB, 0x16ED3), (0x16FF2, 0x16FF3), (0x187F8, 0x187FF),
    (0x18CD6, 0x18CDA), (0x18D09, 0x18D20), (0x18D80, 0x18DF2), (0x18E00, 0x19191), (0x191A0, 0x191D2),
    (0x1B123, 0x1B128), (0x1B168, 0x1B168), (0x1D6A6, 0x1D6A6), (0x1DF1F, 0x1DF24), (0x1DF2B, 0x1DF81),
    (0x1DF90, 0x1DF96), (0x1DFCD, 0x1DFFF), (0x1E6C0, 0x1E6DE), (0x1E6E0, 0x1E6E2), (0x1E6E4, 0x1E6E5),
    (0x1E6E7, 0x1E6ED), (0x1E6F0, 0x1E6F4), (0x1E6FE, 0x1E6FF), (0x2B73A, 0x2B73F), (0x2B81E, 0x2B81E),
    (0x2CEA2, 0x2CEAD), (0x323B0, 0x33479), (0x3D000, 0x3FC3F),
)  # fmt: skip
NEWER_NUMBERS = (
    (0x11DE0, 0x11DE9),
    (0x1246F, 0x1246F),
    (0x12475, 0x1247F),
    (0x12550, 0x12686),
    (0x16FF4, 0x16FF6),
)


def resolve_pattern(pattern: str) -> str:
    """Return the regex for a pattern name ("gpt2", "gpt4"), or check and return a custom regex."""
    return check_pattern(PATTERNS.get(pattern, pattern))


def check_pattern(pattern: str) -> str:
    """A split regex must compile, and have no capturing groups: with groups, `findall` would return the
    groups instead of the chunks."""
    try:
        compiled = compile_pattern(pattern)
    except (regex.error, TypeError) as exc:
        raise ScratchLMError(f"invalid split pattern {pattern!r}: {exc}") from None
    if compiled.groups:
        raise ScratchLMError(f"split pattern {pattern!r} has capturing groups: write (?:...), not (...)")
    return pattern


@lru_cache(maxsize=8)
def compile_pattern(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def _ranges(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(f"\\U{a:08x}" + (f"-\\U{b:08x}" if b != a else "") for a, b in ranges)


_NEWER = frozenset(chr(c) for a, b in NEWER_LETTERS + NEWER_NUMBERS for c in range(a, b + 1))


@lru_cache(maxsize=8)
def _pinned_pattern(pattern: str) -> regex.Pattern:
    """`pattern` with \\p{L} and \\p{N} as tiktoken has them: without the post-Unicode-16 ones (the
    regex module's version-1 set difference; the plain pattern when that does not compile)."""
    pinned = pattern.replace(r"\p{L}", f"[\\p{{L}}--[{_ranges(NEWER_LETTERS)}]]").replace(
        r"\p{N}", f"[\\p{{N}}--[{_ranges(NEWER_NUMBERS)}]]"
    )
    try:
        return regex.compile(pinned, flags=regex.V1)
    except regex.error:
        return compile_pattern(pattern)


def split_text(text: str, pattern: str) -> list[str]:
    """Cut text into chunks; BPE never merges across chunk boundaries. Text with a letter or number newer
    than Unicode 16 (rare) goes through the pinned pattern, so chunks are tiktoken's (NEWER_LETTERS).

    >>> split_text("Hello world's 2024!!", GPT2_PATTERN)
    ['Hello', ' world', "'s", ' 2024', '!!']
    >>> split_text("Hello world's 2024!!", GPT4_PATTERN)
    ['Hello', ' world', "'s", ' ', '202', '4', '!!']
    """
    if text.isascii() or _NEWER.isdisjoint(set(text)):  # set(): ~7 ms per MB, a tenth of the split
        return compile_pattern(pattern).findall(text)
    return _pinned_pattern(pattern).findall(text)


def count_chunks(texts: Iterable[str], pattern: str, specials: Sequence[str] = ()) -> Counter[str]:
    """Count the chunks of in-memory texts; each text is split on its own, and special-token strings
    are cut out first so they never become part of a chunk.

    >>> count_chunks(["a b a<|endoftext|>b"], GPT2_PATTERN, ["<|endoftext|>"])
    Counter({'a': 1, ' b': 1, ' a': 1, 'b': 1})
    """
    counts: Counter[str] = Counter()
    cut = _special_splitter(tuple(specials))
    for text in texts:
        for piece in cut(text) if cut else (text,):
            counts.update(split_text(piece, pattern))
    return counts


@lru_cache(maxsize=8)
def _special_splitter(specials: tuple[str, ...]) -> Callable[[str], list[str]] | None:
    if not specials:
        return None
    return regex.compile("|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))).split
