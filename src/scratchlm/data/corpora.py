"""Corpora that exist on every machine, so demos and benchmarks run offline with no download.

The Python standard library's own sources (code, comments and docstrings) are real, varied English+code
text, and `../shared/data`-style folders are used when a user points at one.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from scratchlm.errors import ScratchLMError


def stdlib_files(max_bytes: int, skip_bytes: int = 0) -> list[Path]:
    """The standard library's .py files in sorted order: skip the first `skip_bytes`, then take files
    until `max_bytes` are collected. Two calls with consecutive ranges give disjoint train/held-out sets."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    seen = taken = 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts or "tests" in path.parts:
            continue
        try:
            size = path.stat().st_size
            path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        start, seen = seen, seen + size
        if start < skip_bytes:  # a file that starts before the cut belongs to the earlier range
            continue
        files.append(path)
        taken += size
        if taken >= max_bytes:
            break
    if not files:
        raise ScratchLMError(f"found no Python standard library sources under {root}")
    return files


def data_file(data_dir: str | Path, name: str) -> Path:
    """A file of a data directory such as ../shared/data, with a clear error when it is missing."""
    path = Path(data_dir) / name
    if not path.is_file():
        raise ScratchLMError(f"{path}: not found in the data directory {data_dir}")
    return path
