"""`WordTokenizer`: the book's first tokenizer, a regex split on words and punctuation plus a vocabulary.

Decoding rejoins words with spaces and pulls punctuation back, so it is lossy for whitespace: a teaching
tool before BPE, not a way to store text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import regex

from scratchlm.errors import ScratchLMError

UNK = "<|unk|>"
EOT = "<|endoftext|>"
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

    def decode(self, ids: Iterable[int]) -> str:
        try:
            words = [self.id_to_token[i] for i in ids]
        except (IndexError, TypeError):
            raise ScratchLMError(f"token id out of range for a vocabulary of {self.vocab_size}") from None
        return JOIN_PUNCT.sub(r"\1", " ".join(words))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(
            json.dumps({"format": FORMAT, "version": 1, "vocab": self.id_to_token}, ensure_ascii=False)
        )
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: dict) -> WordTokenizer:
        if data.get("format") != FORMAT or data.get("version") != 1:
            raise ScratchLMError("not a scratchlm word tokenizer (format 'scratchlm-word', version 1)")
        return cls(data["vocab"])

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordTokenizer:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ScratchLMError(f"{path}: no such file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ScratchLMError(f"{path}: not a JSON file ({exc})") from None
