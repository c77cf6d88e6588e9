"""Find and load a tokenizer from whatever a user points at, and save one in every format at once.

A spec is "gpt2", a directory, or a file: our JSON (BPE or word), an HF tokenizer.json, or a
`*.tiktoken` ranks file (GPT-2's split unless told otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

from scratchlm.errors import ScratchLMError
from scratchlm.files import read_json
from scratchlm.interop.hf_tokenizer import MARKER_FORMAT, HFTokenizer
from scratchlm.interop.tiktoken_file import load_tiktoken_ranks, save_tiktoken_ranks
from scratchlm.interop.tokenizer_json import from_tokenizer_json, save_tokenizer_json
from scratchlm.tokenizer import Tokenizer, WordTokenizer
from scratchlm.tokenizer.gpt2 import load_data_gym

OWN_FILE = "scratchlm_tokenizer.json"

AnyTokenizer = Tokenizer | WordTokenizer | HFTokenizer
# GPT-2's file pair under OpenAI's names and under HF's (GPT2Tokenizer's vocab.json + merges.txt).
DATA_GYM_PAIRS = (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt"))


def has_tokenizer(directory: Path) -> bool:
    """Whether a directory holds tokenizer files that `load_tokenizer` reads."""
    if any((directory / name).is_file() for name in (OWN_FILE, "tokenizer.json")):
        return True
    return any((directory / a).is_file() and (directory / b).is_file() for a, b in DATA_GYM_PAIRS)


def load_tokenizer(spec: str | os.PathLike, pattern: str | None = None) -> AnyTokenizer:
    """Load a tokenizer from a name ("gpt2"), a directory or a file. A `.tiktoken` file holds ranks only,
    so it needs the split `pattern` ("gpt2", "gpt4" or a regex) and gets no special tokens."""
    if str(spec) == "gpt2":
        return Tokenizer.gpt2()
    path = Path(spec)
    if path.is_dir():
        for name in (OWN_FILE, "tokenizer.json"):
            if (path / name).is_file():
                return load_tokenizer(path / name)
        for encoder, merges in DATA_GYM_PAIRS:
            if (path / encoder).is_file() and (path / merges).is_file():
                return load_data_gym(path / encoder, path / merges, name=path.name)
        raise ScratchLMError(
            f"{path}: no {OWN_FILE}, tokenizer.json, encoder.json + vocab.bpe or vocab.json + merges.txt here"
        )
    if not path.exists():
        raise ScratchLMError(f"{path}: no such tokenizer file or directory (or use 'gpt2')")
    if path.suffix == ".tiktoken":
        if pattern is None:
            raise ScratchLMError(
                f"{path}: a .tiktoken file holds ranks only; give its split pattern (gpt2, gpt4 or a regex)"
            )
        return load_tiktoken_ranks(path, pattern)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ScratchLMError(f"{path}: not a tokenizer JSON file")
    kind = data.get("format")
    if kind == "scratchlm-bpe":
        return Tokenizer.from_dict(data)
    if kind == "scratchlm-word":
        return WordTokenizer.from_dict(data)
    if kind == MARKER_FORMAT:  # a Hugging Face tokenizer copied beside it: the tokenizers library runs it
        return HFTokenizer(path.parent)
    if "model" in data:
        return from_tokenizer_json(data, name=path.parent.name or "hf")
    raise ScratchLMError(f"{path}: not a tokenizer file this version of scratchlm knows")


def save_tokenizer(tok: AnyTokenizer, directory: str | os.PathLike) -> Path:
    """Write a tokenizer directory: our JSON, plus HF tokenizer.json/tokenizer_config.json and tiktoken ranks
    for BPE tokenizers, so other tools read the same directory. Returns the path of our JSON."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ScratchLMError(f"{directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    own = tok.save(directory / OWN_FILE)
    if isinstance(tok, Tokenizer):
        save_tokenizer_json(tok, directory)
        save_tiktoken_ranks(tok, directory / f"{tok.name}.tiktoken")
    return own
