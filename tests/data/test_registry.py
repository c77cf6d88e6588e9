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
