"""GPT-2's byte-to-unicode alphabet: every byte as one printable character, so tokens are readable strings.

Used by the file formats (GPT-2's encoder.json/vocab.bpe, HF tokenizer.json, our own JSON), never by encoding.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def byte_to_char() -> dict[int, str]:
    """Printable non-space Latin-1 bytes map to themselves; the other 68 bytes to chr(256 + n), in order.

    >>> byte_to_char()[ord("a")], byte_to_char()[ord(" ")], byte_to_char()[ord("\\n")]
    ('a', 'Ġ', 'Ċ')
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


@lru_cache(maxsize=1)
def char_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_char().items()}


def bytes_to_str(token: bytes) -> str:
    """Bytes as a string of the alphabet.

    >>> bytes_to_str(b" hello\\n")
    'ĠhelloĊ'
    """
    table = byte_to_char()
    return "".join(table[b] for b in token)


def str_to_bytes(token: str) -> bytes:
    """Inverse of `bytes_to_str`; a character outside the alphabet raises KeyError."""
    table = char_to_byte()
    return bytes(table[c] for c in token)
