"""The small files every stage leaves behind: JSON read with one clear error per failure, and atomic
writes (a temp file beside the target, then rename), so a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import json
import math
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
    """`data` as JSON, atomically; NaN and infinity (which JSON does not have) are written as null."""
    return write_atomic(path, json.dumps(finite(data), ensure_ascii=False, indent=1) + "\n")


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None.

    >>> finite({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 4 MB pieces (checkpoint manifests, shard checksums)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class DownloadError(ScratchLMError):
    """A download failed; `status` is the HTTP status when the server answered (404: not there)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def download(
    url: str, dest: Path, desc: str, show_progress: bool = True, size_hint: int | None = None
) -> Path:
    """`url` into `dest` with a progress bar, through `dest.part` renamed at the end, so a half-finished
    download never looks complete (the .part is removed on any failure). Plain urllib: no dependency."""
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, tmp.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or size_hint
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not show_progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}", exc.code) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {getattr(exc, 'reason', exc)} (offline?)") from None
    os.replace(tmp, dest)
    return dest
