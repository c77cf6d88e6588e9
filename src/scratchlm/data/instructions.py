"""Instruction data: read Alpaca or chat files, split them, encode conversations with a template, and collate
(inputs, targets) batches whose targets say which tokens the model learns.

The collate follows the book's `custom_collate_fn` (chapter 7): every example ends with one end-of-text
token, rows are padded with end-of-text, the first end-of-text of each row stays a target (so the model
learns to stop) and the padding after it is masked with -100, which `next_token_loss` ignores. Optionally
the prompt is masked too, so only the response is learned. Knows nothing about models or training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scratchlm.data.templates import Message, Template, alpaca_messages, check_messages
from scratchlm.errors import ScratchLMError
from scratchlm.tokenizer.protocol import TokenizerLike

IGNORE_INDEX = -100
BOOK_SPLIT = (0.85, 0.05, 0.10)  # train, val, test: chapter 7's portions


# ---- files -------------------------------------------------------------------------------------------


def read_conversations(path: str | os.PathLike) -> list[list[Message]]:
    """Conversations from a file: a JSON array or JSON lines of Alpaca records (`instruction`, optional
    `input`, `output`) or of chat records (`messages`: a list of {role, content})."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScratchLMError(f"{path}: no such data file") from None
    except UnicodeDecodeError:
        raise ScratchLMError(f"{path}: not a UTF-8 text file") from None
    records = _parse_records(text, path)
    if not records:
        raise ScratchLMError(f"{path}: no records")
    return [_conversation(r, f"{path}: record {i + 1}") for i, r in enumerate(records)]


def _parse_records(text: str, path: Path) -> list:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScratchLMError(f"{path}: not valid JSON ({exc})") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ScratchLMError(f"{path}: line {number} is not JSON ({exc.msg})") from None
    return records


def _conversation(record, where: str) -> list[Message]:
    if not isinstance(record, dict):
        raise ScratchLMError(f"{where}: expected an object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list):
            raise ScratchLMError(f"{where}: 'messages' must be a list")
        try:
            check_messages(messages, needs_reply=True)
        except ScratchLMError as exc:
            raise ScratchLMError(f"{where}: {exc}") from None
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    fields = {key: record.get(key) or "" for key in ("instruction", "input", "output")}  # input may be null
    bad = [k for k, v in fields.items() if not isinstance(v, str)]
    if "instruction" not in record or "output" not in record or bad:
        raise ScratchLMError(
            f"{where}: expected Alpaca fields instruction, output (text; input optional) or 'messages'"
        )
    return alpaca_messages(fields["instruction"], fields["input"], fields["output"])


def split_conversations(
    conversations: Sequence, fractions: Sequence[float] = BOOK_SPLIT, seed: int | None = 123
) -> tuple[list, list, list]:
    """(train, val, test): shuffled with `seed` (None keeps the file order, as the book does), then cut as
    the book cuts: train = int(n·f_train), test = int(n·f_test), val = the rest."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ScratchLMError(f"split fractions must be three numbers >= 0 that sum to 1, got {fractions}")
    items = list(conversations)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(items))
        items = [items[i] for i in order]
    n_train, n_test = int(len(items) * fractions[0]), int(len(items) * fractions[2])
    train, test = items[:n_train], items[n_train : n_train + n_test]
    return train, items[n_train + n_test :], test


# ---- tokens ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """One example's token ids, ending with end-of-text, and which of them the model writes (the replies
    and the final end-of-text)."""

    ids: tuple[int, ...]
    is_response: tuple[bool, ...]


def encode_conversation(template: Template, tokenizer: TokenizerLike, messages: Sequence[Message]) -> Encoded:
    """Token ids of a conversation rendered by `template`, plus end-of-text.

    Segments are encoded one by one and concatenated, so the prompt's ids are exactly those of the
    generation prompt alone (BPE never merges across the prompt/response boundary)."""
    eot = tokenizer.eot_id
    if eot is None:
        raise ScratchLMError("the tokenizer has no <|endoftext|> token, which ends every example")
    ids: list[int] = []
    is_response: list[bool] = []
    for text, response in template.segments(messages):
        piece = tokenizer.encode_ordinary(text)  # user text never becomes a special token
        ids += piece
        is_response += [response] * len(piece)
    return Encoded(tuple([*ids, eot]), tuple([*is_response, True]))


def learns_something(example: Encoded, allowed_max_length: int) -> bool:
    """Whether a response token is still a target after truncation (target j predicts token j + 1)."""
    return any(example.is_response[1 : allowed_max_length + 1])


def collate(
    examples: Sequence[Encoded],
    pad_id: int,
    allowed_max_length: int | None = None,
    mask_prompt: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (B, T) int64, with T = min(longest example - 1, allowed_max_length).

    Row i is example i's ids padded with `pad_id`; inputs = row[:-1], targets = row[1:]. Targets past the
    example's end-of-text (the padding) are -100, and so are the prompt's with `mask_prompt`.

    >>> ex = [Encoded((5, 6, 7, 0), (False, True, True, True)), Encoded((8, 0), (False, True))]
    >>> x, y = collate(ex, pad_id=0, mask_prompt=True)
    >>> x.tolist(), y.tolist()
    ([[5, 6, 7], [8, 0, 0]], [[6, 7, 0], [0, -100, -100]])
    """
    if not examples:
        raise ScratchLMError("cannot collate an empty batch")
    longest = max(len(e.ids) for e in examples)
    width = longest - 1 if allowed_max_length is None else min(longest - 1, allowed_max_length)
    inputs = torch.full((len(examples), width), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, e in enumerate(examples):
        n = min(len(e.ids) - 1, width)  # targets this row has before its padding
        ids = torch.tensor(e.ids, dtype=torch.long)
        inputs[row, :n] = ids[:n]
        targets[row, :n] = ids[1 : n + 1]
        if mask_prompt:
            learned = torch.tensor(e.is_response[1 : n + 1], dtype=torch.bool)
            targets[row, :n][~learned] = IGNORE_INDEX
    return inputs, targets


class InstructionBatches:
    """Batches for the one training loop: each epoch a seeded permutation of the examples, cut into
    batches; the generator, the permutation and the position are the state a checkpoint saves."""

    def __init__(
        self,
        examples: Sequence[Encoded],
        pad_id: int,
        allowed_max_length: int | None = None,
        mask_prompt: bool = False,
        seed: int = 0,
    ) -> None:
        if not examples:
            raise ScratchLMError("no examples to train on")
        self.examples = list(examples)
        self.pad_id, self.allowed_max_length, self.mask_prompt = pad_id, allowed_max_length, mask_prompt
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.examples))
        self.pos = 0

    def _batch(self, picked: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor]:
        return collate(picked, self.pad_id, self.allowed_max_length, self.mask_prompt)

    def get_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next `batch_size` examples of this epoch's order (a new order when too few are left, so every
        batch is full, as the book's `drop_last=True`)."""
        if batch_size > len(self.examples):
            batch_size = len(self.examples)
        if self.pos + batch_size > len(self.order):
            self.order = self.rng.permutation(len(self.examples))
            self.pos = 0
        picked = [self.examples[i] for i in self.order[self.pos : self.pos + batch_size]]
        self.pos += batch_size
        return self._batch(picked)

    def iter_sequential(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every example once, in order (the last batch may be smaller): for evaluation."""
        for start in range(0, len(self.examples), batch_size):
            yield self._batch(self.examples[start : start + batch_size])

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": self.order.tolist(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = np.array(state["order"], dtype=np.int64)
        self.pos = int(state["pos"])
