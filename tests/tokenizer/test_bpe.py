"""The pure BPE functions: pair counting, merging, merge learning (fast == naive), rank-based splitting."""

from __future__ import annotations

import doctest
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.tokenizer import bpe


def test_doctests():
    assert doctest.testmod(bpe).failed == 0


def fresh_ids():
    vocab = [bytes([i]) for i in range(256)]

    def new_token(a: int, b: int) -> int:
        vocab.append(vocab[a] + vocab[b])
        return len(vocab) - 1

    return new_token, vocab


def test_learn_merges_on_a_known_example():
    words = {b"low": 5, b"lower": 2, b"newest": 6, b"widest": 3}
    new_token, vocab = fresh_ids()
    merges = bpe.learn_merges(words, 4, new_token)
    # 'es' (9) and 'st' (9) tie; (e, s) < (s, t) by id, so 'es' goes first, then 'est', then 'lo' (7)
    # ties with 'ow' (7) and wins on ids ('l' < 'o').
    assert [vocab[256 + i] for i in range(len(merges))] == [b"es", b"est", b"lo", b"low"]


def test_min_frequency_stops_early():
    new_token, _ = fresh_ids()
    assert bpe.learn_merges({b"abcd": 1}, 10, new_token, min_frequency=2) == []
    new_token, _ = fresh_ids()
    assert len(bpe.learn_merges({b"abcd": 1}, 10, new_token, min_frequency=1)) == 3


word_counts = st.dictionaries(st.binary(min_size=0, max_size=10), st.integers(1, 50), max_size=30)
small_alphabet = st.dictionaries(st.text("abc", max_size=12).map(str.encode), st.integers(1, 20), max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.one_of(word_counts, small_alphabet), st.integers(0, 40), st.integers(1, 3))
def test_incremental_merges_equal_the_naive_loop(words, num_merges, min_frequency):
    fast, _ = fresh_ids()
    slow, _ = fresh_ids()
    expected = bpe.learn_merges_naive(words, num_merges, slow, min_frequency)
    assert bpe.learn_merges(words, num_merges, fast, min_frequency) == expected


@given(st.lists(st.integers(0, 5), max_size=30), st.integers(0, 5), st.integers(0, 5))
def test_merge_pair_removes_every_occurrence_left_to_right(ids, a, b):
    merged = bpe.merge_pair(ids, (a, b), 99)
    assert len(merged) == len(ids) - merged.count(99)
    # Expanding the new token gives back the original sequence.
    expanded = [x for t in merged for x in ((a, b) if t == 99 else (t,))]
    assert expanded == ids
    if a != b:
        assert (a, b) not in pairwise(merged)


@given(st.binary(max_size=40))
def test_bpe_split_concatenates_to_the_input(piece):
    ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"abc": 257, b"  ": 258}
    parts = bpe.bpe_split(piece, ranks)
    assert b"".join(parts) == piece
    assert all(p in ranks for p in parts)
