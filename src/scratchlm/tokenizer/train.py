"""`train_bpe`: count the corpus's chunks once, learn merges, and return a `Tokenizer`.

The merge loop runs in the compiled core (`_bpe_core`, built at install) when present, else in the pure
Python `bpe.learn_merges`; both give identical merges.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from tqdm.auto import tqdm

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import bpe
from scratchlm.tokenizer.corpus import count_chunks_in_files, count_chunks_in_texts, expand_inputs
from scratchlm.tokenizer.pretokenize import resolve_pattern
from scratchlm.tokenizer.tokenizer import EOT, Tokenizer, check_special_tokens, clean_surrogates

try:
    from scratchlm.tokenizer import _bpe_core
except ImportError:  # no compiler at install time: the pure-Python loop is used
    _bpe_core = None

Core = Literal["auto", "c", "python"]


class _VocabFull(Exception):
    """Raised by the new-token callback to stop the merge loop once the vocabulary is complete."""


def check_fast_pattern(pattern: str) -> str:
    """Refuse, before any training, a split regex that tiktoken's engine (the fast encoder) cannot compile."""
    import tiktoken

    try:
        tiktoken.Encoding(
            "check", pat_str=pattern, mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens={}
        )
    except ValueError as exc:
        raise ScratchLMError(
            f"split pattern {pattern!r} does not compile in tiktoken's regex engine: {exc}"
        ) from None
    return pattern


def available_core() -> str:
    return "c" if _bpe_core is not None else "python"


def train_bpe(
    texts: str | Iterable[str] | None = None,
    vocab_size: int = 4096,
    *,
    files: Iterable[str | os.PathLike] | None = None,
    pattern: str = "gpt4",
    special_tokens: Iterable[str] = (EOT,),
    min_frequency: int = 2,
    workers: int | None = None,
    show_progress: bool = False,
    core: Core = "auto",
    name: str = "bpe",
) -> Tokenizer:
    """Train a byte-level BPE tokenizer from in-memory `texts` and/or `files` (paths, directories, globs).

    `vocab_size` counts the 256 byte tokens, the merges and the special tokens (as HF `tokenizers` does).
    `pattern` is "gpt2", "gpt4" or a custom regex. Merging stops early, with a smaller vocabulary, when no
    pair occurs `min_frequency` times. Special-token strings in the corpus are cut out, never merged.
    """
    pattern = check_fast_pattern(resolve_pattern(pattern))
    specials = list(dict.fromkeys(check_special_tokens(special_tokens)))
    if vocab_size < 256 + len(specials):
        raise ScratchLMError(
            f"vocab_size {vocab_size} is too small: a byte-level BPE needs 256 byte tokens"
            f" + {len(specials)} special tokens = {256 + len(specials)} at least"
        )
    if texts is None and files is None:
        raise ScratchLMError("nothing to train on: give texts or files")
    if isinstance(files, (str, os.PathLike)):
        files = [files]

    chunks = _count_corpus(texts, files, pattern, specials, workers, show_progress)
    if not chunks:
        raise ScratchLMError("the corpus is empty: no text to train on")
    words = Counter()
    for chunk, n in chunks.items():
        words[chunk.encode("utf-8")] += n

    vocab = [bytes([b]) for b in range(256)]
    index = {b: i for i, b in enumerate(vocab)}
    target = vocab_size - len(specials)
    bar = tqdm(total=target - 256, desc="merges", unit="tok", disable=not show_progress)

    def new_token(a: int, b: int) -> int:
        token = vocab[a] + vocab[b]
        existing = index.get(token)
        if existing is not None:  # another merge already spelled these bytes: reuse its id
            return existing
        if len(vocab) >= target:
            raise _VocabFull
        index[token] = len(vocab)
        vocab.append(token)
        bar.update(1)
        return len(vocab) - 1

    learn = merge_learner(core)
    try:
        # Merges that re-spell an existing token add no id, so allow more merges than ids; the callback
        # stops the loop when the vocabulary is full.
        learn(words, 4 * (target - 256) + 16, new_token, min_frequency)
    except _VocabFull:
        pass
    finally:
        bar.close()

    ranks = {token: i for i, token in enumerate(vocab)}
    special_ids = {tok: len(vocab) + i for i, tok in enumerate(specials)}
    return Tokenizer(ranks, pattern, special_ids, name=name)


def merge_learner(
    core: Core = "auto",
) -> Callable[[Mapping[bytes, int], int, bpe.NewToken, int], list[bpe.Pair]]:
    """The merge loop as `learn(words, num_merges, new_token, min_frequency)`: the C core or pure Python,
    which return identical merges ("auto" prefers C when it was built)."""
    if core == "python" or (core == "auto" and _bpe_core is None):
        return bpe.learn_merges
    if core in ("c", "auto"):
        if _bpe_core is None:
            raise ScratchLMError("the compiled BPE core is not built (reinstall with a C compiler)")

        def learn_c(words, num_merges, new_token, min_frequency=2):
            return _bpe_core.learn_merges(
                list(words), list(words.values()), num_merges, new_token, min_frequency
            )

        return learn_c
    raise ScratchLMError(f"unknown BPE core {core!r}: use 'auto', 'c' or 'python'")


def _count_corpus(texts, files, pattern, specials, workers, show_progress) -> Counter[str]:
    counts: Counter[str] = Counter()
    if texts is not None:
        if isinstance(texts, str):
            texts = [texts]
        texts = [clean_surrogates(t) for t in texts]
        counts.update(count_chunks_in_texts(texts, pattern, specials, workers))
    if files is not None:
        files = expand_inputs(files)  # missing or unreadable paths fail here, before any progress bar
        total = sum(f.stat().st_size for f in files)
        bar = tqdm(total=total, desc="counting", unit="B", unit_scale=True, disable=not show_progress)
        try:
            counts.update(
                count_chunks_in_files(files, pattern, workers, on_progress=bar.update, specials=specials)
            )
        finally:
            bar.close()
    return counts
