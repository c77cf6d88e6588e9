"""Public datasets by name: where they come from, how big they are, their license and checksum, and where
they are on this machine.

`get("tinyshakespeare")` returns a local path: a file in `data_dir` (e.g. ../shared/data) if it is there,
else the cache (`$SCRATCHLM_CACHE/datasets`, default ~/.cache/scratchlm), else a download into the cache with
a progress bar, written atomically (a `.part` file renamed at the end) and checked against the size and
SHA-256 listed here. A file whose checksum we do not list yet is trusted on first download and its digest is
stored beside it, so a later corruption is still caught. `SCRATCHLM_OFFLINE=1` forbids the network;
`SCRATCHLM_DATASETS_MIRROR=URL` fetches `URL/<file name>` instead of the upstream address (a local mirror;
the tests use one on 127.0.0.1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scratchlm import files
from scratchlm.errors import ScratchLMError
from scratchlm.files import sha256_file


@dataclass(frozen=True)
class Dataset:
    name: str
    url: str
    filename: str  # the name in the cache and in a --data-dir
    description: str
    license: str
    size: int | None = None  # bytes, when known
    sha256: str | None = None  # when known; else trusted on first download
    local_names: tuple[str, ...] = ()  # other paths under a --data-dir that hold the same data
    member: str | None = None  # the data file inside the downloaded zip: `get` returns it, extracted
    extracted: str | None = None  # the extracted member's name in the cache (its suffix names the format)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "tinyshakespeare",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "tinyshakespeare.txt",
            "40,000 lines of Shakespeare (char-rnn, nanoGPT)",
            "public domain",
            1_115_394,
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        ),
        Dataset(
            "the-verdict",
            "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt",
            "the-verdict.txt",
            "Edith Wharton's short story, the book's chapter 2 and 5 text",
            "public domain",
            20_479,
            "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
        ),
        Dataset(
            "sms-spam",
            "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
            "sms_spam_collection.zip",
            "SMS Spam Collection v.1: 5,574 messages labelled ham/spam (a zip; `get` extracts its TSV)",
            "CC BY 4.0",
            local_names=("sms_spam/sms_spam.tsv",),
            member="SMSSpamCollection",
            extracted="sms_spam.tsv",
        ),
        Dataset(
            "instruction-data",
            "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json",
            "instruction-data.json",
            "the book's 1,100 Alpaca-style instructions (chapter 7)",
            "Apache-2.0",
        ),
        Dataset(
            "tinystories",
            "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt",
            "TinyStories-valid.txt",
            "TinyStories validation split: short stories in simple English (Eldan & Li 2023)",
            "CDLA-Sharing-1.0",
        ),
        Dataset(
            "alpaca",
            "https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/alpaca_data.json",
            "alpaca_data.json",
            "Stanford Alpaca: 52,002 instruction/input/output records",
            "CC BY-NC 4.0",
        ),
    )
}


def cache_dir() -> Path:
    return Path(os.environ.get("SCRATCHLM_CACHE", Path.home() / ".cache" / "scratchlm")) / "datasets"


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ScratchLMError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def find_local(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The dataset's file in `data_dir` (checked when a checksum is listed) or in the cache, else None."""
    d = dataset(name)
    if data_dir is not None:
        for rel in (d.filename, *d.local_names):
            path = Path(data_dir) / rel
            if path.is_file():
                if rel == d.filename and d.sha256 and sha256_file(path) != d.sha256:
                    raise ScratchLMError(
                        f"{path}: SHA-256 differs from {name}'s ({d.sha256[:12]}…): a different file"
                    )
                return path
    cached = cache_dir() / d.filename
    if cached.is_file():
        _verify(d, cached)
        return cached
    return None


def get(name: str, data_dir: str | os.PathLike | None = None, show_progress: bool = True) -> Path:
    """A local path to the dataset: found in `data_dir` or the cache, or downloaded into the cache. A
    dataset published as a zip (`member`) is the member file, extracted into the cache beside it."""
    path = _get_file(name, data_dir, show_progress)
    d = dataset(name)
    return _extract(d, path) if d.member and path.suffix.lower() == ".zip" else path


def _extract(d: Dataset, archive: Path) -> Path:
    """`d.member` of the zip `archive`, written (atomically) to the cache as `d.extracted` unless the copy
    there is already newer than the archive."""
    import zipfile

    dest = cache_dir() / (d.extracted or d.member)
    if dest.is_file() and dest.stat().st_mtime >= archive.stat().st_mtime:
        return dest
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            member = next((n for n in names if n.rsplit("/", 1)[-1] == d.member), None)
            if member is None:
                raise ScratchLMError(
                    f"{archive}: no {d.member} in the zip (it holds {', '.join(names[:5]) or 'nothing'})"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            part.write_bytes(zf.read(member))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ScratchLMError(f"{archive}: not a readable zip ({exc}); delete it and run `scratchlm data get "
                             f"{d.name}`") from None  # fmt: skip
    os.replace(part, dest)
    return dest


def _get_file(name: str, data_dir: str | os.PathLike | None, show_progress: bool) -> Path:
    """The dataset's file as published, found or downloaded."""
    found = find_local(name, data_dir)
    if found is not None:
        return found
    d = dataset(name)
    if os.environ.get("SCRATCHLM_OFFLINE") == "1":
        where = f" or {data_dir}" if data_dir else ""
        raise ScratchLMError(
            f"{name} is not in the cache{where}, and SCRATCHLM_OFFLINE=1 forbids downloading it"
        )
    mirror = os.environ.get("SCRATCHLM_DATASETS_MIRROR")
    url = f"{mirror.rstrip('/')}/{d.filename}" if mirror else d.url
    dest = cache_dir() / d.filename
    fetched = dest.with_name(dest.name + ".fetched")  # checked before it takes the real name
    try:
        files.download(url, fetched, name, show_progress, d.size)
        _check_download(d, fetched, url)
    except ScratchLMError as exc:
        fetched.unlink(missing_ok=True)
        raise ScratchLMError(
            f"{name}: {exc}" + (" (or pass --data-dir)" if "offline" in str(exc) else "")
        ) from None
    os.replace(fetched, dest)
    if d.sha256 is None:  # trust on first use; later reads check against this
        dest.with_name(dest.name + ".sha256").write_text(sha256_file(dest) + "\n")
    return dest


def _check_download(d: Dataset, path: Path, url: str) -> None:
    size = path.stat().st_size
    if d.size is not None and size != d.size:
        raise ScratchLMError(f"{url}: got {size:,} bytes, {d.name} has {d.size:,}: not the expected file")
    if d.sha256 is not None and sha256_file(path) != d.sha256:
        raise ScratchLMError(f"{url}: the SHA-256 does not match {d.name}'s: a different or corrupted file")


def _verify(d: Dataset, path: Path) -> None:
    expected = d.sha256
    recorded = path.with_name(path.name + ".sha256")
    if expected is None and recorded.is_file():
        expected = recorded.read_text().strip()
    if expected is not None and sha256_file(path) != expected:
        raise ScratchLMError(
            f"{path}: corrupted (SHA-256 differs); delete it and run `scratchlm data get {d.name}`"
        )


def status(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where the dataset is: "data-dir", "cached" or "-" (would be downloaded)."""
    d = dataset(name)
    if data_dir is not None and any((Path(data_dir) / rel).is_file() for rel in (d.filename, *d.local_names)):
        return "data-dir"
    return "cached" if (cache_dir() / d.filename).is_file() else "-"
