"""tiktoken's native ranks file (`*.tiktoken`): one `base64(token bytes) rank` line per token.

The file holds ranks only; the split pattern and special tokens travel separately.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer import PATTERNS, Tokenizer
from scratchlm.tokenizer.pretokenize import resolve_pattern


def save_tiktoken_ranks(tok: Tokenizer, path: str | os.PathLike) -> Path:
    """Write the ranks file that `tiktoken.load.load_tiktoken_bpe` reads."""
    path = Path(path)
    lines = (
        f"{base64.b64encode(token).decode()} {rank}\n"
        for token, rank in sorted(tok.ranks.items(), key=lambda kv: kv[1])
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="ascii")
    os.replace(tmp, path)
    return path


def load_tiktoken_ranks(
    path: str | os.PathLike, pattern: str = "gpt2", special_tokens: Mapping[str, int] | None = None
) -> Tokenizer:
    """A Tokenizer from a ranks file plus its split `pattern` (a name in PATTERNS or a regex)."""
    path = Path(path)
    if not path.is_file():
        raise ScratchLMError(f"{path}: no such file")
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error):
            raise ScratchLMError(f"{path}:{n}: expected 'base64 rank', got {line[:60]!r}") from None
    name = path.stem if pattern not in PATTERNS else f"{path.stem}-{pattern}"
    return Tokenizer(ranks, resolve_pattern(pattern), special_tokens or {}, name=name)
