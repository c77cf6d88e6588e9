"""`Tokenizer`: a byte-level BPE (ranks + split pattern + special tokens) that encodes and decodes.

Two encoders give identical ids: a readable pure-Python one (`method="reference"`) and a fast one that
hands the same ranks to `tiktoken` (`method="fast"`, the default). Special tokens follow tiktoken: text
that spells a special token raises unless that token is allowed, so user text cannot inject one.

Decoding policy: ids decode to bytes, and bytes to text with `errors="replace"` by default, so a sequence
that ends inside a UTF-8 character (a token boundary can fall there) gives U+FFFD instead of crashing;
`errors="strict"` raises instead, and `StreamDecoder` holds incomplete characters back for streaming.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Collection, Iterable, Mapping
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import regex

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, write_json
from scratchlm.tokenizer.bpe import bpe_split
from scratchlm.tokenizer.byte_alphabet import bytes_to_str, str_to_bytes
from scratchlm.tokenizer.pretokenize import check_pattern, split_text

FORMAT = "scratchlm-bpe"
FORMAT_VERSION = 1
EOT = "<|endoftext|>"

Specials = Literal["all"] | Collection[str]


class DisallowedSpecialTokenError(ScratchLMError, ValueError):
    """The text spells a special token (`.token`) that the caller did not allow."""

    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(
            f"the text contains the special token {token!r}; pass allowed_special={{{token!r}}} to encode it "
            "as that token, or disallowed_special=() to encode it as text"
        )


def clean_surrogates(text: str) -> str:
    """Replace lone surrogates (not encodable as UTF-8) by U+FFFD, as tiktoken does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class Tokenizer:
    """Byte-level BPE: `ranks` maps every mergeable token's bytes to its id (its merge priority).

    Treat an instance as immutable: the decoder and the tiktoken encoding are derived from `ranks` once
    (and `Tokenizer.gpt2()` returns one shared instance). To change a vocabulary, build a new Tokenizer."""

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        pattern: str,
        special_tokens: Mapping[str, int] | None = None,
        name: str = "bpe",
    ) -> None:
        self.ranks: dict[bytes, int] = dict(ranks)
        self.pattern = check_pattern(pattern)
        self.special_tokens: dict[str, int] = dict(special_tokens or {})
        check_special_tokens(self.special_tokens)
        self.name = name
        missing = [b for b in range(256) if bytes([b]) not in self.ranks]
        if missing:
            raise ScratchLMError(f"tokenizer {name!r}: ranks lack {len(missing)} of the 256 single bytes")
        self._decoder: dict[int, bytes] = {i: b for b, i in self.ranks.items()}
        if len(self._decoder) != len(self.ranks):
            raise ScratchLMError(f"tokenizer {name!r}: two tokens share one id")
        for text, i in self.special_tokens.items():
            if i in self._decoder:
                raise ScratchLMError(f"tokenizer {name!r}: special token {text!r} reuses id {i}")
            self._decoder[i] = text.encode("utf-8")
        self._cache: dict[bytes, list[int]] = {}

    # ---- sizes and lookups -------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """One more than the largest id: the size of an embedding table for this tokenizer."""
        return max(self._decoder) + 1

    @property
    def eot_id(self) -> int | None:
        """Id of `<|endoftext|>`, if this tokenizer has it."""
        return self.special_tokens.get(EOT)

    def token_bytes(self, token_id: int) -> bytes:
        try:
            return self._decoder[token_id]
        except (KeyError, TypeError):
            raise ScratchLMError(
                f"token id {token_id!r} is not in this tokenizer (vocab size {self.vocab_size})"
            ) from None

    # ---- encoding ----------------------------------------------------------------------------------
    def encode(
        self,
        text: str,
        *,
        allowed_special: Specials = frozenset(),
        disallowed_special: Specials = "all",
        method: Literal["fast", "reference"] = "fast",
    ) -> list[int]:
        """Text to ids. Special-token text raises unless allowed; pass `disallowed_special=()` to encode
        it as plain text instead (what servers must do with user input).

        The reference method caches each distinct chunk's ids on this object (up to 65,536 chunks), so it
        speeds up as it sees repeated words; ids never depend on the cache."""
        text = clean_surrogates(text)
        allowed = self._check_specials(text, allowed_special, disallowed_special)
        if method == "fast":
            return self.tiktoken.encode(text, allowed_special=allowed, disallowed_special=())
        if method != "reference":
            raise ScratchLMError(f"unknown encode method {method!r}: use 'fast' or 'reference'")
        if not allowed:
            return self._encode_ordinary_reference(text)
        ids: list[int] = []
        start = 0
        for match in _special_regex(tuple(sorted(allowed))).finditer(text):
            ids += self._encode_ordinary_reference(text[start : match.start()])
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        ids += self._encode_ordinary_reference(text[start:])
        return ids

    def encode_ordinary(self, text: str, method: Literal["fast", "reference"] = "fast") -> list[int]:
        """Encode all text as plain text: special-token strings become ordinary tokens."""
        if method == "fast":
            return self.tiktoken.encode_ordinary(clean_surrogates(text))
        return self.encode(text, disallowed_special=(), method=method)

    def encode_batch(
        self, texts: Iterable[str], *, allowed_special: Specials = frozenset(), num_threads: int = 8
    ) -> list[list[int]]:
        """Encode many texts on tiktoken's thread pool (fast path)."""
        texts = [clean_surrogates(t) for t in texts]
        allowed = set()
        for t in texts:
            allowed |= self._check_specials(t, allowed_special, "all")
        return self.tiktoken.encode_batch(
            texts, num_threads=num_threads, allowed_special=allowed, disallowed_special=()
        )

    def _check_specials(self, text: str, allowed_special: Specials, disallowed_special: Specials) -> set[str]:
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ScratchLMError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        disallowed = (
            set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        )
        if disallowed and (match := _special_regex(tuple(sorted(disallowed))).search(text)):
            raise DisallowedSpecialTokenError(match.group())
        return allowed

    def _encode_ordinary_reference(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in split_text(text, self.pattern):
            piece = chunk.encode("utf-8")
            cached = self._cache.get(piece)
            if cached is None:
                cached = [self.ranks[p] for p in bpe_split(piece, self.ranks)]
                if len(self._cache) < 1 << 16:
                    self._cache[piece] = cached
            ids += cached
        return ids

    @cached_property
    def tiktoken(self):  # -> tiktoken.Encoding, imported lazily
        """The same tokenizer as a `tiktoken.Encoding` (built once, on first use)."""
        import tiktoken

        try:
            return tiktoken.Encoding(
                name=f"scratchlm-{self.name}-{self.fingerprint[:12]}",
                pat_str=self.pattern,
                mergeable_ranks=self.ranks,
                special_tokens=self.special_tokens,
            )
        except ValueError as exc:
            raise ScratchLMError(
                f"tiktoken cannot use this tokenizer's split pattern ({exc}); encode with method='reference'"
            ) from None

    # ---- decoding ----------------------------------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        ids = list(ids)
        try:
            return b"".join([self._decoder[i] for i in ids])
        except (KeyError, TypeError):
            for i in ids:
                self.token_bytes(i)  # raises the clear error for the first bad id
            raise

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Ids to text; with `errors="replace"` (default) bytes that are not whole UTF-8 become U+FFFD."""
        data = self.decode_bytes(list(ids))
        try:
            return data.decode("utf-8", errors=errors)
        except UnicodeDecodeError as exc:
            raise ScratchLMError(
                f"the ids decode to invalid UTF-8 at byte {exc.start}: {exc.reason}"
            ) from None

    # ---- persistence -------------------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over pattern, ranks and special tokens: equal fingerprints encode identically."""
        h = hashlib.sha256(self.pattern.encode())
        for token, rank in sorted(self.ranks.items(), key=lambda kv: kv[1]):
            h.update(rank.to_bytes(8, "little") + len(token).to_bytes(8, "little") + token)
        h.update(json.dumps(sorted(self.special_tokens.items())).encode())
        return h.hexdigest()

    def to_dict(self) -> dict:
        vocab = {bytes_to_str(b): i for b, i in sorted(self.ranks.items(), key=lambda kv: kv[1])}
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "vocab": vocab,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Tokenizer:
        if data.get("format") != FORMAT:
            raise ScratchLMError(f"not a scratchlm BPE tokenizer (format={data.get('format')!r})")
        if data.get("version") != FORMAT_VERSION:
            raise ScratchLMError(
                f"tokenizer format version {data.get('version')!r} is not supported (this scratchlm reads "
                f"version {FORMAT_VERSION}); upgrade scratchlm"
            )
        missing = [key for key in ("pattern", "vocab") if key not in data]
        if missing:
            raise ScratchLMError(f"tokenizer file lacks {missing}")
        try:
            ranks = {str_to_bytes(tok): int(i) for tok, i in data["vocab"].items()}
        except KeyError as exc:
            raise ScratchLMError(
                f"tokenizer vocabulary has a character outside the byte alphabet: {exc}"
            ) from None
        except (AttributeError, TypeError, ValueError):
            raise ScratchLMError("tokenizer vocabulary must map token strings to integer ids") from None
        return cls(ranks, data["pattern"], data.get("special_tokens", {}), data.get("name", "bpe"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the versioned JSON (atomically: a temp file, then rename)."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        return cls.from_dict(read_json(path))

    @classmethod
    def gpt2(cls) -> Tokenizer:
        """GPT-2's pretrained BPE (50,257 tokens), from files that ship with the package: works offline."""
        from scratchlm.tokenizer.gpt2 import load_gpt2

        return load_gpt2()

    def __repr__(self) -> str:
        return (
            f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"special_tokens={sorted(self.special_tokens)})"
        )


class StreamDecoder:
    """Turns ids into text as they arrive, holding back bytes of a character that is not complete yet."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


def check_special_tokens(tokens: Iterable[str]) -> list[str]:
    """Special tokens must be non-empty text that UTF-8 can hold, none inside another (the encoders would
    then disagree on which one to match)."""
    if isinstance(tokens, str):
        raise ScratchLMError(f"special tokens must be a list of strings, not the string {tokens!r}")
    tokens = list(tokens)
    for t in tokens:
        if not isinstance(t, str) or not t:
            raise ScratchLMError(f"special token {t!r} must be a non-empty string")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            raise ScratchLMError(f"special token {t!r} is not valid text (lone surrogate)") from None
    for a in tokens:
        for b in tokens:
            if a != b and a in b:
                raise ScratchLMError(f"special token {a!r} is part of special token {b!r}")
    return tokens


@lru_cache(maxsize=64)
def _special_regex(tokens: tuple[str, ...]) -> regex.Pattern:
    # Longest first, so a special token that contains another one wins.
    return regex.compile("|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True)))
