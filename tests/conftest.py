"""Shared fixtures: GPT-2 (ours and tiktoken's, both from the packaged files), small texts, and small
tokenizers trained on the Python standard library, which every machine has (no network, no ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from scratchlm.data.corpora import stdlib_files
from scratchlm.tokenizer import GPT2_PATTERN, Tokenizer, train_bpe
from scratchlm.tokenizer.gpt2 import ENCODER_JSON_SHA256, VOCAB_BPE_SHA256, gpt2_files
from tests.strategies import SAMPLE_TEXT


@pytest.fixture(scope="session")
def gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


@pytest.fixture(scope="session")
def tiktoken_gpt2() -> tiktoken.Encoding:
    """tiktoken's own gpt2 encoding, built offline from the same two files."""
    encoder, bpe = gpt2_files()
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(bpe),
        encoder_json_file=str(encoder),
        vocab_bpe_hash=VOCAB_BPE_SHA256,
        encoder_json_hash=ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2-test",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
        explicit_n_vocab=50257,
    )


@pytest.fixture(scope="session")
def stdlib_text() -> str:
    """About 600 KB of real text: standard-library sources."""
    return "".join(p.read_text(encoding="utf-8") for p in stdlib_files(600_000))


@pytest.fixture(scope="session")
def trained(stdlib_text: str) -> Tokenizer:
    """A small BPE (GPT-4 split) trained on standard-library text plus the sample text."""
    return train_bpe([stdlib_text, SAMPLE_TEXT], vocab_size=1000, pattern="gpt4")


@pytest.fixture(scope="session")
def trained_gpt2_pattern(stdlib_text: str) -> Tokenizer:
    return train_bpe([stdlib_text, SAMPLE_TEXT], vocab_size=800, pattern="gpt2")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, stdlib_text: str) -> Path:
    """A 60 KB text file of real text (standard-library source), for runs that read files."""
    path = tmp_path_factory.mktemp("tiny_corpus") / "text.txt"
    path.write_text(stdlib_text[:60_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory, tiny_corpus: Path) -> Path:
    """A 300-token BPE learned from `tiny_corpus`, saved: the file a run's `data.tokenizer` can name. Its
    small vocabulary keeps the output layer, which dominates a tiny model's cost, small too."""
    from scratchlm.formats.tokenizer_files import save_tokenizer

    tokenizer = train_bpe(
        [tiny_corpus.read_text(encoding="utf-8")], vocab_size=300, special_tokens=["<|endoftext|>"]
    )
    return save_tokenizer(tokenizer, tmp_path_factory.mktemp("tiny_tokenizer"))
