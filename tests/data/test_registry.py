"""Datasets by name: found in a data dir, cached, or downloaded (from a local HTTP server on 127.0.0.1),
checked by size and SHA-256, never left half-written."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest

from scratchlm.cli.main import main
from scratchlm.data import registry
from scratchlm.data.registry import Dataset
from scratchlm.errors import ScratchLMError

TEXT = b"To be, or not to be, that is the question.\n" * 50


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server serving tmp_path/site; the cache in tmp_path/cache; a small test dataset."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hamlet.txt").write_bytes(TEXT)
    (site / "unknown.txt").write_bytes(b"no checksum listed for this one")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SCRATCHLM_DATASETS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("SCRATCHLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHLM_OFFLINE", raising=False)
    sha = hashlib.sha256(TEXT).hexdigest()
    monkeypatch.setitem(
        registry.DATASETS,
        "hamlet",
        Dataset("hamlet", "https://example.invalid/h", "hamlet.txt", "t", "PD", len(TEXT), sha),
    )
    monkeypatch.setitem(
        registry.DATASETS, "unknown", Dataset("unknown", "https://x.invalid/u", "unknown.txt", "t", "?")
    )
    yield site
    server.shutdown()


def test_download_then_cache(mirror, tmp_path):
    path = registry.get("hamlet", show_progress=False)
    assert path == tmp_path / "cache" / "datasets" / "hamlet.txt" and path.read_bytes() == TEXT
    (mirror / "hamlet.txt").unlink()  # the second time comes from the cache
    assert registry.get("hamlet", show_progress=False) == path
    assert registry.status("hamlet") == "cached"


def test_a_wrong_file_is_refused_and_not_kept(mirror, tmp_path):
    (mirror / "hamlet.txt").write_bytes(TEXT.replace(b"question", b"answer!!"))  # same size, other bytes
    with pytest.raises(ScratchLMError, match="SHA-256"):
        registry.get("hamlet", show_progress=False)
    assert not any((tmp_path / "cache" / "datasets").iterdir())  # neither the file nor a .part


def test_unknown_checksum_is_recorded_on_first_download(mirror, tmp_path):
    path = registry.get("unknown", show_progress=False)
    assert (path.parent / "unknown.txt.sha256").read_text().strip() == hashlib.sha256(
        path.read_bytes()
    ).hexdigest()
    path.write_bytes(b"corrupted")
    with pytest.raises(ScratchLMError, match="corrupted"):
        registry.get("unknown", show_progress=False)


def test_data_dir_first_and_offline(mirror, tmp_path, monkeypatch):
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    (data_dir / "hamlet.txt").write_bytes(TEXT)
    assert registry.get("hamlet", data_dir, show_progress=False) == data_dir / "hamlet.txt"
    assert registry.status("hamlet", data_dir) == "data-dir"
    monkeypatch.setenv("SCRATCHLM_OFFLINE", "1")
    with pytest.raises(ScratchLMError, match="SCRATCHLM_OFFLINE"):
        registry.get("unknown", show_progress=False)
    with pytest.raises(ScratchLMError, match="unknown dataset"):
        registry.get("imagenet")


def test_missing_file_on_the_server(mirror):
    (mirror / "hamlet.txt").unlink()
    with pytest.raises(ScratchLMError, match="HTTP 404"):
        registry.get("hamlet", show_progress=False)


def test_cli_list_and_get(mirror, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(
        name in out for name in ("tinyshakespeare", "the-verdict", "sms-spam", "tinystories", "alpaca")
    )
    assert main(["data", "get", "hamlet", "-q"]) == 0
    assert capsys.readouterr().out.strip().endswith("hamlet.txt")
    assert main(["data", "get", "nope"]) == 2


def test_the_registry_lists_what_the_issue_names():
    for d in registry.DATASETS.values():
        assert d.url.startswith("https://") and d.license and d.filename
    known = {d.name: d for d in registry.DATASETS.values()}
    assert known["tinyshakespeare"].size == 1_115_394 and len(known["tinyshakespeare"].sha256) == 64


def test_a_zipped_dataset_is_its_member_extracted_and_readable_as_a_table(mirror, tmp_path, monkeypatch):
    """The SMS Spam Collection is published as a zip: `data get` gives the TSV inside, which classify reads
    (README: `scratchlm finetune classify -d "$(scratchlm data get sms-spam)" ...`)."""
    import zipfile

    from scratchlm.data.classification import read_labeled

    rows = 'ham\tSee you at 5\nspam\tWIN a prize! Text 8"\n'
    with zipfile.ZipFile(mirror / "spam.zip", "w") as zf:
        zf.writestr("SMSSpamCollection", rows)
        zf.writestr("readme", "about the data")
    zipped = Dataset("spamzip", "https://x.invalid/s.zip", "spam.zip", "t", "CC", member="SMSSpamCollection",
                     extracted="spam.tsv")  # fmt: skip
    monkeypatch.setitem(registry.DATASETS, "spamzip", zipped)
    path = registry.get("spamzip", show_progress=False)
    assert path == tmp_path / "cache" / "datasets" / "spam.tsv"
    assert read_labeled(path, "1", "0") == (["See you at 5", 'WIN a prize! Text 8"'], ["ham", "spam"])
    (mirror / "spam.zip").unlink()
    assert registry.get("spamzip", show_progress=False) == path  # from the cache, not extracted again
    assert registry.DATASETS["sms-spam"].extracted.endswith(".tsv")

    with zipfile.ZipFile(mirror / "other.zip", "w") as zf:
        zf.writestr("readme", "no data here")
    other = Dataset("other", "u", "other.zip", "t", "?", member="data")
    monkeypatch.setitem(registry.DATASETS, "other", other)
    with pytest.raises(ScratchLMError, match="no data in the zip"):
        registry.get("other", show_progress=False)
    (mirror / "broken.zip").write_bytes(b"not a zip at all")
    broken = Dataset("broken", "u", "broken.zip", "t", "?", member="x")
    monkeypatch.setitem(registry.DATASETS, "broken", broken)
    with pytest.raises(ScratchLMError, match="not a readable zip"):
        registry.get("broken", show_progress=False)
