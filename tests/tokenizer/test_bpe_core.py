"""The C core of BPE training gives exactly the merges of the pure-Python reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlm.tokenizer.bpe import learn_merges, learn_merges_naive

core = pytest.importorskip("scratchlm.tokenizer._bpe_core")


def fresh_ids():
    """new_token that always assigns a fresh id (vocab[a] + vocab[b] appended)."""
    vocab = [bytes([i]) for i in range(256)]

    def new_token(a: int, b: int) -> int:
        vocab.append(vocab[a] + vocab[b])
        return len(vocab) - 1

    return new_token


def dedup_ids():
    """new_token that returns the existing id when the merged bytes are already a token."""
    vocab = [bytes([i]) for i in range(256)]
    index = {v: i for i, v in enumerate(vocab)}

    def new_token(a: int, b: int) -> int:
        merged = vocab[a] + vocab[b]
        if merged not in index:
            index[merged] = len(vocab)
            vocab.append(merged)
        return index[merged]

    return new_token


def c_merges(words, num_merges, new_token, min_frequency=2):
    return core.learn_merges(list(words), list(words.values()), num_merges, new_token, min_frequency)


def check_same(words, num_merges=100, *, naive=True):
    for min_frequency in (1, 2):
        for make in (fresh_ids, dedup_ids):
            expected = learn_merges(words, num_merges, make(), min_frequency)
            assert c_merges(words, num_merges, make(), min_frequency) == expected
            if naive:
                assert learn_merges_naive(words, num_merges, make(), min_frequency) == expected


HAND_MADE = [
    {b"hug": 10, b"pug": 5, b"pun": 12, b"bun": 4, b"hugs": 5},
    {b"ab": 3, b"ba": 3, b"cd": 3, b"dc": 3},  # all ties: smallest pair first
    {b"aaaaaa": 1},
    {b"aaaaaaa": 3, b"aa": 2, b"aaa": 1},
    {b"abababab": 2, b"baba": 5, b"a": 100, b"": 7},
    {b"ab": 2**40, b"bc": 2**31 + 1, b"abc": 2**33},  # counts beyond 32 bits
    {b"xyxyxy": 2**62 // 8, b"yx": 3},
    {"héllo wörld".encode(): 3, "日本語".encode(): 2, bytes(range(256)): 1, bytes([255, 0, 255, 0]): 4},
    {b"abcabc": 1, b"bcabca": 1, b"cabcab": 1},
    {b"abab": 4, b"aabb": 4, b"bbaa": 4},  # dedup_ids gives ids already in the vocab
]


@pytest.mark.parametrize("words", HAND_MADE)
def test_hand_made(words):
    check_same(words)


def test_hand_made_few_merges():
    words = HAND_MADE[0]
    for n in range(6):
        assert c_merges(words, n, fresh_ids()) == learn_merges(words, n, fresh_ids())


def test_known_result():
    # (u, g) appears 20 times, then (u, n) 16, then (h, ug) 15.
    words = {b"hug": 10, b"pug": 5, b"pun": 12, b"bun": 4, b"hugs": 5}
    merges = c_merges(words, 3, fresh_ids())
    assert merges == [(ord("u"), ord("g")), (ord("u"), ord("n")), (ord("h"), 256)]


def test_ignored_words():
    # Length < 2 or count <= 0: ignored, as in the Python version.
    words = {b"ab": 0, b"cd": -5, b"e": 9, b"fg": 1}
    assert c_merges(words, 10, fresh_ids(), 1) == learn_merges(words, 10, fresh_ids(), 1) == [(102, 103)]
    assert core.learn_merges([b"ab"], [-(2**70)], 10, fresh_ids(), 1) == []


def test_min_frequency_stops():
    words = {b"ab": 5, b"cd": 3, b"ef": 1}
    assert c_merges(words, 10, fresh_ids(), 3) == [(97, 98), (99, 100)]
    assert c_merges(words, 10, fresh_ids(), 6) == []


def test_empty_and_zero():
    assert core.learn_merges([], [], 10, fresh_ids(), 2) == []
    assert core.learn_merges([b"abab"], [3], 0, fresh_ids(), 2) == []
    assert core.learn_merges([b"abab"], [3], -1, fresh_ids(), 2) == []
    assert core.learn_merges([b"a", b""], [3, 4], 10, fresh_ids(), 1) == []


def test_keywords_and_default_min_frequency():
    words = {b"ab": 1, b"cd": 2}
    assert core.learn_merges(
        words=list(words), freqs=list(words.values()), num_merges=5, new_token=fresh_ids()
    ) == [(99, 100)]


def test_new_token_called_once_per_merge_in_order():
    calls = []
    inner = fresh_ids()

    def new_token(a, b):
        calls.append((a, b))
        return inner(a, b)

    words = {b"the cat": 4, b"the hat": 3, b"that": 2}
    merges = c_merges(words, 20, new_token, 1)
    assert calls == merges == learn_merges(words, 20, fresh_ids(), 1)


def test_exception_in_new_token_propagates():
    class Boom(Exception):
        pass

    seen = []

    def new_token(a, b):
        seen.append((a, b))
        if len(seen) == 3:
            raise Boom("stop")
        return 255 + len(seen)

    with pytest.raises(Boom, match="stop"):
        c_merges({b"abcdefgh": 5, b"abcd": 2}, 100, new_token)
    assert len(seen) == 3


@pytest.mark.parametrize("bad", [-1, 2**31, 2**80, "x", None])
def test_bad_new_token_result(bad):
    with pytest.raises((ValueError, OverflowError, TypeError)):
        c_merges({b"abab": 3}, 5, lambda a, b: bad)


def test_bad_arguments():
    with pytest.raises(TypeError):
        core.learn_merges(["ab"], [1], 5, fresh_ids(), 2)  # str, not bytes
    with pytest.raises(ValueError):
        core.learn_merges([b"ab"], [1, 2], 5, fresh_ids(), 2)
    with pytest.raises(TypeError):
        core.learn_merges([b"ab"], [1], 5, None, 2)
    with pytest.raises(OverflowError):
        core.learn_merges([b"ab"], [2**64], 5, fresh_ids(), 2)


words_strategy = st.dictionaries(
    st.binary(min_size=0, max_size=12).map(lambda b: bytes(x % 6 + 97 for x in b))
    | st.binary(min_size=0, max_size=8),
    st.integers(min_value=1, max_value=50) | st.integers(min_value=2**31, max_value=2**40),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(words=words_strategy, num_merges=st.integers(min_value=0, max_value=60))
def test_hypothesis_matches_reference(words, num_merges):
    check_same(words, num_merges)


@settings(max_examples=100, deadline=None)
@given(
    words=st.dictionaries(
        st.binary(min_size=0, max_size=30).map(lambda b: bytes(x % 3 + 97 for x in b)),
        st.integers(min_value=1, max_value=9),
        max_size=40,
    ),
    min_frequency=st.integers(min_value=0, max_value=20),
)
def test_hypothesis_small_alphabet(words, min_frequency):
    # Few symbols: many ties, long repeats and tokens re-spelled by different merges.
    for make in (fresh_ids, dedup_ids):
        expected = learn_merges(words, 200, make(), min_frequency)
        assert c_merges(words, 200, make(), min_frequency) == expected
