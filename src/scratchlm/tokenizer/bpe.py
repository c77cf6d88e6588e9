"""Byte-pair encoding: learning merges from chunk counts, and applying ranks to bytes.

Pure functions over bytes, ids and counts. Knows nothing about files, regexes or special tokens.

Training works on *unique* pre-tokenized chunks and their counts (a corpus of 30 MB of Python has
fewer than 100k of them), keeps a count for every adjacent pair, and after each merge updates only the
words that contain the merged pair; a max-heap with lazy invalidation finds the next best pair.
Ties are broken deterministically: the highest count wins, then the smallest (left id, right id).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise

Pair = tuple[int, int]
# Called once per merge with the pair and must return the id of the merged token: a new id, or the id
# of an existing token with the same bytes (two different merges can spell the same bytes).
NewToken = Callable[[int, int], int]


def count_pairs(ids: Iterable[int]) -> dict[Pair, int]:
    """Count adjacent pairs.

    >>> count_pairs([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    ids = list(ids)
    counts: dict[Pair, int] = {}
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair`, left to right, with `new_id`.

    >>> merge_pair([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge_pair([5, 5, 5], (5, 5), 6)
    [6, 5]
    """
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges_naive(
    words: Mapping[bytes, int], num_merges: int, new_token: NewToken, min_frequency: int = 2
) -> list[Pair]:
    """The textbook loop: recount every pair of every word before each merge. O(merges x corpus).

    Kept as the readable specification and as the baseline that benchmarks compare against.
    """
    seqs = [list(w) for w in words]
    freqs = list(words.values())
    merges: list[Pair] = []
    for _ in range(num_merges):
        counts: dict[Pair, int] = defaultdict(int)
        for seq, freq in zip(seqs, freqs):
            for pair in pairwise(seq):
                counts[pair] += freq
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < min_frequency:
            break
        new_id = new_token(*best)
        seqs = [merge_pair(seq, best, new_id) for seq in seqs]
        merges.append(best)
    return merges


def learn_merges(
    words: Mapping[bytes, int], num_merges: int, new_token: NewToken, min_frequency: int = 2
) -> list[Pair]:
    """Learn up to `num_merges` merges over unique words (byte strings) and their counts.

    Gives exactly the merges of `learn_merges_naive` (same tie-breaking), restricted to pairs seen at
    least `min_frequency` times, at a cost proportional to the words each merge touches.
    Initial ids are byte values; `new_token(a, b)` assigns the id of each merge.
    """
    seqs: list[list[int]] = []
    freqs: list[int] = []
    for word, freq in words.items():
        if len(word) > 1 and freq > 0:
            seqs.append(list(word))
            freqs.append(freq)

    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words that may contain it
    for w, (seq, freq) in enumerate(zip(seqs, freqs)):
        for pair in pairwise(seq):
            counts[pair] += freq
            where[pair].add(w)

    # Max-heap on count, then min on pair: store (-count, a, b). Entries go stale when a count drops;
    # a popped entry whose count is out of date is pushed back with the current count.
    heap = [(-c, a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while heap and len(merges) < num_merges:
        neg, a, b = heapq.heappop(heap)
        pair = (a, b)
        current = counts.get(pair, 0)
        if current != -neg:
            if current > 0:
                heapq.heappush(heap, (-current, a, b))
            continue
        if current < min_frequency:
            break
        new_id = new_token(a, b)
        merges.append(pair)
        touched: set[Pair] = set()
        for w in where.pop(pair):
            seq = seqs[w]
            if len(seq) < 2:
                continue
            merged = merge_pair(seq, pair, new_id)
            if len(merged) == len(seq):
                continue  # stale index: the pair left this word in an earlier merge
            freq = freqs[w]
            for p in pairwise(seq):
                counts[p] -= freq
            for p in pairwise(merged):
                counts[p] += freq
                if new_id in p:
                    where[p].add(w)
                    touched.add(p)
            seqs[w] = merged
        counts.pop(pair, None)
        # Only pairs that contain the new token can have grown: push their fresh counts.
        for p in touched:
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p[0], p[1]))
    return merges


def bpe_split(piece: bytes, ranks: Mapping[bytes, int]) -> list[bytes]:
    """Split one chunk into tokens by merging the adjacent pair of lowest rank first (tiktoken's rule).

    A chunk that is itself a token is returned whole; among equal ranks the leftmost merges first.

    >>> bpe_split(b"abab", {b"a": 0, b"b": 1, b"ab": 2, b"abab": 3})
    [b'abab']
    >>> bpe_split(b"aab", {b"a": 0, b"b": 1, b"ab": 2})
    [b'a', b'ab']
    """
    if piece in ranks:
        return [piece]
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best_i = rank, i
        if best_rank is None:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts
