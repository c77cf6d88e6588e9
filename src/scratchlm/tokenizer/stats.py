"""How well a tokenizer compresses text: bytes and characters per token, and how much of its vocabulary
a text uses. Pure: texts in, numbers out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from scratchlm.tokenizer.protocol import TokenizerLike


@dataclass(frozen=True)
class TokenStats:
    n_bytes: int
    n_chars: int
    n_tokens: int
    vocab_size: int
    top: list[tuple[int, int]] = field(default_factory=list)  # (id, count), most frequent first
    n_distinct: int = 0

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / self.n_tokens if self.n_tokens else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / self.n_tokens if self.n_tokens else 0.0

    @property
    def vocab_usage(self) -> float:
        """Fraction of the vocabulary that occurs at least once in the text."""
        return self.n_distinct / self.vocab_size if self.vocab_size else 0.0


def measure(tokenizer: TokenizerLike, texts: Iterable[str], encode=None, top_k: int = 10) -> TokenStats:
    """Encode every text (with `encode` if given, e.g. to allow special tokens) and count.

    >>> from scratchlm.tokenizer import Tokenizer
    >>> s = measure(Tokenizer.gpt2(), ["hello world"])
    >>> s.n_tokens, s.bytes_per_token
    (2, 5.5)
    """
    encode = encode or tokenizer.encode
    counts: Counter[int] = Counter()
    n_bytes = n_chars = 0
    for text in texts:
        counts.update(encode(text))
        n_bytes += len(text.encode("utf-8"))
        n_chars += len(text)
    return TokenStats(
        n_bytes=n_bytes,
        n_chars=n_chars,
        n_tokens=sum(counts.values()),
        vocab_size=tokenizer.vocab_size,
        top=counts.most_common(top_k),
        n_distinct=len(counts),
    )
