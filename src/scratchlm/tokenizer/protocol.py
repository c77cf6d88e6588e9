"""What the rest of the package needs of a tokenizer: ours (BPE, GPT-2's), a `WordTokenizer`, or anything
with the same methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class TokenizerLike(Protocol):
    @property
    def eot_id(self) -> int | None: ...

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...

    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...
