"""The small files every stage leaves behind: JSON read with one clear error per failure, and atomic
writes (a temp file beside the target, then rename), so a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from scratchlm.errors import ScratchLMError


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScratchLMError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScratchLMError(f"{path}: is a directory, expected a JSON file") from None
    except PermissionError:
        raise ScratchLMError(f"{path}: permission denied") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScratchLMError(f"{path}: not a JSON file ({exc})") from None


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 4 MB pieces (checkpoint manifests, shard checksums)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()
