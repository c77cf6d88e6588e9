"""A fake Hugging Face Hub on 127.0.0.1 for download tests: files under <root>/<org>/<repo>/resolve/main/ are
served as the Hub serves them, and the environment points scratchlm's downloads (and its cache) there."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def serve_hub(root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serve `root` over HTTP during the block, HF_ENDPOINT and SCRATCHLM_CACHE set; yields the URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("SCRATCHLM_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        yield url
    finally:
        server.shutdown()
