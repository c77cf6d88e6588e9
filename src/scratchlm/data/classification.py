"""Labelled texts for classification: read a table (TSV, CSV, JSONL, JSON; plain text for prediction),
split it per class, balance it, encode and pad it into (token_ids, labels, last_index) batches.

Rows are padded on the right, as the book does, and each batch carries the position of every row's last
real token, which is where the classifier reads. Knows nothing about models.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from scratchlm.errors import ScratchLMError

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "json", ".txt": "txt"}


# ---- reading ----------------------------------------------------------------------------------------------
def read_rows(path: str | os.PathLike, fields: Sequence[str], header: bool | None = None) -> list[tuple]:
    """The values of `fields` in each row of a table file, as strings, with one clear error per problem.

    TSV is one record per line split at tabs, with no quoting (quotes are part of the text, as in the SMS
    Spam Collection); CSV follows RFC 4180 quoting. A field is a column name or a 0-based column index.
    `header=None` means: the first row is a header exactly when a field is given by name. JSONL/JSON rows
    are objects, fields are keys. A `.txt` file is one text per non-empty line (for one field).
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ScratchLMError(f"{path}: unknown table format {path.suffix!r}: use .tsv, .csv, .jsonl or .json")
    text = _read_text(path)
    if kind in ("jsonl", "json"):
        rows = _json_rows(path, text, kind, fields)
    elif kind == "txt":
        if len(fields) != 1:
            raise ScratchLMError(f"{path}: a .txt file holds texts only (no labels): use tsv, csv or jsonl")
        rows = [(line,) for line in text.splitlines() if line.strip()]
    else:
        rows = _table_rows(path, text, kind, fields, header)
    if not rows:
        raise ScratchLMError(f"{path}: no rows")
    return rows


def read_labeled(
    path: str | os.PathLike, text_field: str, label_field: str, header: bool | None = None
) -> tuple[list[str], list[str]]:
    """(texts, labels) of a table; labels are stripped strings, texts must not be empty."""
    rows = read_rows(path, [text_field, label_field], header)
    texts, labels = [], []
    for number, (text, label) in enumerate(rows, 1):
        label = label.strip()
        if not text:
            raise ScratchLMError(f"{path}: row {number}: the text is empty")
        if not label:
            raise ScratchLMError(f"{path}: row {number}: the label is empty")
        texts.append(text)
        labels.append(label)
    return texts, labels


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise ScratchLMError(f"{path}: is a directory, expected a data file")
    if not path.is_file():
        raise ScratchLMError(f"{path}: no such file")
    try:
        return path.read_bytes().decode("utf-8-sig")  # a byte-order mark is not part of the first field
    except UnicodeDecodeError as exc:
        raise ScratchLMError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None


def _table_rows(path: Path, text: str, kind: str, fields: Sequence[str], header: bool | None) -> list[tuple]:
    if kind == "tsv":
        lines = [line.split("\t") for line in text.splitlines()]
    else:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    numbered = [(n, row) for n, row in enumerate(lines, 1) if any(cell.strip() for cell in row)]
    if not numbered:
        return []
    if header is None:
        header = not all(f.isdigit() for f in fields)
    columns: list[int] = []
    names = [cell.strip() for cell in numbered[0][1]] if header and numbered else []
    for field in fields:
        if field.isdigit():
            columns.append(int(field))
        elif not header:
            raise ScratchLMError(f"{path}: column {field!r} by name needs a header row (or give its index)")
        elif field in names:
            columns.append(names.index(field))
        else:
            raise ScratchLMError(
                f"{path}: no column {field!r} in the header ({', '.join(map(repr, names[:8]))}); give "
                "--text-field/--label-field as header names or 0-based column indices"
            )
    rows = []
    for number, row in numbered[1:] if header else numbered:
        if len(row) <= max(columns):
            raise ScratchLMError(
                f"{path}: line {number} has {len(row)} column(s); column {max(columns)} is needed"
            )
        rows.append(tuple(row[c] for c in columns))
    return rows


def _json_rows(path: Path, text: str, kind: str, fields: Sequence[str]) -> list[tuple]:
    if kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScratchLMError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, list):
            raise ScratchLMError(f"{path}: a .json data file is an array of objects")
        objects = list(enumerate(data, 1))
    else:
        objects = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    objects.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ScratchLMError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
    rows = []
    for number, obj in objects:
        where = f"{path}: {'line' if kind == 'jsonl' else 'item'} {number}"
        if not isinstance(obj, dict):
            raise ScratchLMError(f"{where}: not a JSON object")
        row = []
        for field in fields:
            if field not in obj:
                raise ScratchLMError(f"{where}: no field {field!r} (fields: {', '.join(sorted(obj)[:8])})")
            value = obj[field]
            if isinstance(value, (dict, list)) or value is None:
                raise ScratchLMError(f"{where}: field {field!r} is {json.dumps(value)[:40]}, not a value")
            row.append(value if isinstance(value, str) else json.dumps(value))
        rows.append(tuple(row))
    return rows


# ---- splitting and balancing (pure, seeded) ---------------------------------------------------------------
def stratified_split(labels: Sequence, fractions: Sequence[float], seed: int) -> list[list[int]]:
    """Indices of each part, splitting every class in the given fractions (each part gets within one
    example of its share of every class); shuffled with `seed`, then sorted, so the result is a pure
    function of (labels, fractions, seed).

    >>> stratified_split(["a"] * 10 + ["b"] * 5, [0.6, 0.4], seed=0) == stratified_split(
    ...     ["a"] * 10 + ["b"] * 5, [0.6, 0.4], seed=0)
    True
    >>> [len(p) for p in stratified_split(["a"] * 10 + ["b"] * 5, [0.6, 0.4], seed=0)]
    [9, 6]
    """
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ScratchLMError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
    rng = random.Random(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    for label in sorted(set(labels), key=str):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        # Cumulative rounding: the boundaries are round(n * cumulative fraction), so counts add up to n.
        start, total = 0, 0.0
        for part, fraction in zip(parts, fractions):
            total += fraction
            end = round(len(members) * total)
            part += members[start:end]
            start = end
    return [sorted(p) for p in parts]


def undersample(labels: Sequence, seed: int) -> list[int]:
    """Indices that keep every class at the size of the smallest one, chosen at random with `seed` (the
    book's balancing of the spam data), in their original order."""
    rng = random.Random(seed)
    counts = Counter(labels)
    smallest = min(counts.values())
    keep: list[int] = []
    for label in sorted(counts, key=str):
        members = [i for i, y in enumerate(labels) if y == label]
        keep += rng.sample(members, smallest)
    return sorted(keep)


def class_weights(label_ids: Sequence[int], num_classes: int) -> list[float]:
    """n / (num_classes · n_c) per class ("balanced" weights): each class then carries the same total
    weight in the loss. A class absent from `label_ids` gets weight 0.

    >>> class_weights([0, 0, 0, 1], 2)
    [0.6666666666666666, 2.0]
    """
    counts = Counter(label_ids)
    n = len(label_ids)
    return [n / (num_classes * counts[c]) if counts[c] else 0.0 for c in range(num_classes)]


# ---- encoding and batching --------------------------------------------------------------------------------
def encode_texts(
    tokenizer, texts: Sequence[str], max_length: int | None = None
) -> tuple[list[list[int]], int]:
    """(token ids per text, how many were truncated). User text is plain text: "<|endoftext|>" in a
    message is encoded as ordinary characters. Truncation keeps the start of a text, as the book does."""
    ids = [tokenizer.encode_ordinary(t) for t in texts]
    for i, row in enumerate(ids):
        if not row:
            raise ScratchLMError(f"text {i + 1} encodes to no tokens (it is empty)")
    if max_length is None:
        return ids, 0
    truncated = sum(len(row) > max_length for row in ids)
    return [row[:max_length] for row in ids], truncated


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows to the longest: (token_ids (B, T), last_index (B,)), the index of each row's
    last real token.

    >>> ids, last = pad_batch([[5, 6, 7], [8]], pad_id=0)
    >>> ids.tolist(), last.tolist()
    ([[5, 6, 7], [8, 0, 0]], [2, 0])
    """
    width = max(len(r) for r in rows)
    token_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        token_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return token_ids, torch.tensor([len(r) - 1 for r in rows], dtype=torch.long)


def iter_batches(
    ids: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int, pad_id: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(token_ids, labels, last_index) batches in order, for evaluation and prediction."""
    for start in range(0, len(ids), batch_size):
        token_ids, last = pad_batch(ids[start : start + batch_size], pad_id)
        yield token_ids, torch.tensor(labels[start : start + batch_size], dtype=torch.long), last


class ClassificationBatches:
    """Training batches for the one loop: each epoch a seeded permutation, cut into batches; the tail that
    does not fill a batch is dropped (the book's drop_last), so every step sees `batch_size` rows.

    Its state is (epoch, position): a run can resume exactly where it stopped."""

    def __init__(self, ids: Sequence[Sequence[int]], labels: Sequence[int], pad_id: int, seed: int) -> None:
        if len(ids) != len(labels) or not ids:
            raise ScratchLMError("classification batches need as many labels as texts, and at least one")
        self.ids, self.labels, self.pad_id, self.seed = list(ids), list(labels), pad_id, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation()

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self.ids) // batch_size)

    def _permutation(self) -> list[int]:
        return random.Random(self.seed * 1_000_003 + self.epoch).sample(range(len(self.ids)), len(self.ids))

    def get_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = min(batch_size, len(self.ids))
        if self.position + size > len(self.ids):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation()
        chosen = self._order[self.position : self.position + size]
        self.position += size
        token_ids, last = pad_batch([self.ids[i] for i in chosen], self.pad_id)
        return token_ids, torch.tensor([self.labels[i] for i in chosen], dtype=torch.long), last

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self.seed = state["epoch"], state["position"], state["seed"]
        self._order = self._permutation()
