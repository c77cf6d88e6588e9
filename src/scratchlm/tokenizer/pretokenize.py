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
