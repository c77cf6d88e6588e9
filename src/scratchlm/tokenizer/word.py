"""`WordTokenizer`: the book's first tokenizer, a regex split on words and punctuation plus a vocabulary.

Decoding rejoins words with spaces and pulls punctuation back, so it is lossy for whitespace: a teaching
tool before BPE, not a way to store text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import regex

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.tokenizer.tokenizer import EOT

UNK = "<|unk|>"
FORMAT = "scratchlm-word"
SPLIT = regex.compile(r'([,.:;?_!"()\']|--|\s)')
JOIN_PUNCT = regex.compile(r'\s+([,.:;?!"()\'])')


def split_words(text: str) -> list[str]:
    """Split on whitespace, punctuation and double dashes; drop the whitespace.

    >>> split_words('Hello, world. Is this-- a test?')
    ['Hello', ',', 'world', '.', 'Is', 'this', '--', 'a', 'test', '?']
    """
    return [item for item in (part.strip() for part in SPLIT.split(text)) if item]


class WordTokenizer:
    """Maps each word or punctuation mark to an id; unknown words map to `<|unk|>` or raise."""

    def __init__(self, vocab: Iterable[str]) -> None:
        self.id_to_token = list(dict.fromkeys(vocab))
        self.token_to_id = {t: i for i, t in enumerate(self.id_to_token)}

    @classmethod
    def build(cls, text: str | Iterable[str], unk: bool = True, eot: bool = True) -> WordTokenizer:
        """Vocabulary of the sorted unique words of `text`, then `<|endoftext|>` and `<|unk|>` if asked."""
        texts = [text] if isinstance(text, str) else list(text)
        words = sorted({w for t in texts for w in split_words(t)} - {UNK, EOT})
        if not words:
            raise ScratchLMError("the text holds no words to build a vocabulary from")
        return cls(words + [EOT] * eot + [UNK] * unk)

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    @property
    def eot_id(self) -> int | None:
        return self.token_to_id.get(EOT)

    def encode(self, text: str) -> list[int]:
        ids = []
        unk_id = self.token_to_id.get(UNK)
        for word in split_words(text):
            i = self.token_to_id.get(word, unk_id)
            if i is None:
                raise ScratchLMError(
                    f"unknown word {word!r}: it is not in the vocabulary, and this tokenizer has no {UNK}"
                )
            ids.append(i)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Same as `encode`: this tokenizer has no special-token handling to switch off."""
        return self.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        ids = list(ids)
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < self.vocab_size]
        if bad:
            raise ScratchLMError(f"token id {bad[0]!r} is not in this tokenizer (size {self.vocab_size})")
        words = [self.id_to_token[i] for i in ids]
        return JOIN_PUNCT.sub(r"\1", " ".join(words))

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, {"format": FORMAT, "version": 1, "vocab": self.id_to_token})

    @classmethod
    def from_dict(cls, data: dict) -> WordTokenizer:
        if data.get("format") != FORMAT or data.get("version") != 1:
            raise ScratchLMError("not a scratchlm word tokenizer (format 'scratchlm-word', version 1)")
        vocab = data.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
            raise ScratchLMError("word tokenizer file: 'vocab' must be a list of strings")
        return cls(vocab)

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        return cls.from_dict(read_json(path))
