"""GPT-2's byte alphabet is a bijection between the 256 bytes and 256 printable characters."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from scratchlm.tokenizer import byte_alphabet
from scratchlm.tokenizer.byte_alphabet import byte_to_char, bytes_to_str, str_to_bytes


def test_doctests():
    assert doctest.testmod(byte_alphabet).failed == 0


def test_bijection_of_printable_characters():
    chars = byte_to_char().values()
    assert len(set(chars)) == 256
    assert all(c.isprintable() and not c.isspace() for c in chars)


@given(st.binary())
def test_round_trip(data):
    assert str_to_bytes(bytes_to_str(data)) == data
