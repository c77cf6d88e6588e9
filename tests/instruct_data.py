"""Synthetic instruction data and a tiny model directory for the instruction-tuning tests (shared by
tests/finetune and tests/cli; no network, no ../shared)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from scratchlm.data.templates import TEMPLATES, alpaca_messages
from scratchlm.formats.model_files import save_model
from scratchlm.tokenizer import train_bpe
from tests.tiny import tiny_gpt

WORDS = ["cat", "dog", "sun", "tree", "book", "star", "fish", "bird", "lamp", "road", "cup", "hat"]
OPPOSITES = {"hot": "cold", "big": "small", "fast": "slow", "up": "down", "light": "dark", "old": "new"}


def synthetic_records(n: int, seed: int = 0) -> list[dict]:
    """Alpaca records of three easy tasks (a fixed answer shape each), so a tiny model learns them fast."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            word = rng.choice(WORDS)
            records.append(
                {"instruction": "Write the plural of the noun.", "input": word, "output": f"{word}s"}
            )
        elif kind == 1:
            word, opposite = rng.choice(sorted(OPPOSITES.items()))
            records.append(
                {
                    "instruction": f"What is the opposite of {word}?",
                    "input": "",
                    "output": f"The opposite is {opposite}.",
                }
            )
        else:
            word = rng.choice(WORDS)
            records.append(
                {"instruction": "Repeat the word twice.", "input": word, "output": f"{word} {word}"}
            )
    return records


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def tiny_model_dir(directory: Path, seed: int = 0) -> Path:
    """A random tiny GPT (2 layers, 32 wide, context 128) with a small BPE trained on the rendered data."""
    records = synthetic_records(60, seed=seed + 1)
    texts = [
        "".join(
            text for text, _ in template.segments(alpaca_messages(r["instruction"], r["input"], r["output"]))
        )
        for r in records
        for template in TEMPLATES.values()
    ]
    tokenizer = train_bpe(texts, vocab_size=400)
    return save_model(
        tiny_gpt(seed, vocab_size=tokenizer.vocab_size, context_length=128), directory, tokenizer
    )
