"""From a model spec to a running server: load the model (a language model or a classifier), its tokenizer
and chat template, start the batching engine, and run uvicorn on the app."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from pathlib import Path

from scratchlm.device import pick_device
from scratchlm.errors import ScratchLMError
from scratchlm.serve.app import Service, create_app
from scratchlm.serve.engine import Engine
from scratchlm.serve.openai_api import Limits

log = logging.getLogger("scratchlm.serve")


def build_service(
    spec: str,
    name: str | None = None,
    device: str = "auto",
    max_batch: int = 8,
    max_queue: int = 64,
    dtype: str | None = None,
) -> Service:
    """A Service for the model at `spec` (a model or run directory, a classifier directory, or a Hub name),
    its language model's weights in `dtype` (fp32 by default, bf16, fp16)."""
    from scratchlm.data.templates import load_template
    from scratchlm.formats.model_files import classifier_dir, load_model

    path = Path(spec)
    name = name or (path.resolve().name if path.exists() else str(spec))
    if path.is_dir() and classifier_dir(path) is not None:
        from scratchlm.generate.classifier import Classifier

        classifier = Classifier.from_dir(path, device=device, dtype=dtype)
        return Service(None, classifier.tokenizer, name, classifier=classifier)
    model, tokenizer = load_model(spec, dtype)
    if tokenizer is None:
        raise ScratchLMError(f"{spec}: no tokenizer beside the model: a server needs one")
    model = model.to(pick_device(device)).eval()
    template = load_template(path) if path.is_dir() else None
    engine = Engine(model, tokenizer, max_batch=max_batch, max_queue=max_queue).start()
    return Service(engine, tokenizer, name, template=template)


def check_exposure(host: str, api_key: str | None) -> str | None:
    """A warning when the server listens beyond this machine without an API key."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        loopback = False
    if not loopback and not api_key:
        return f"listening on {host} without an API key: anyone who can reach it can use the model"
    return None


def serve(
    service: Service, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, limits=None
) -> None:
    """Run until interrupted (blocking)."""
    import uvicorn

    app = create_app(service, api_key=api_key, limits=limits or Limits())
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=os.environ.get("SCRATCHLM_LOG_LEVEL", "warning"),
            timeout_keep_alive=5,
            limit_concurrency=1000,
        )
    finally:
        if service.engine is not None:
            service.engine.stop()


class BackgroundServer:
    """The server on a free port of 127.0.0.1 in a thread (tests, benchmarks, the demo):
    `with BackgroundServer(service) as url: ...`."""

    def __init__(self, service: Service, api_key: str | None = None, limits: Limits | None = None) -> None:
        import uvicorn

        self.service = service
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        config = uvicorn.Config(
            create_app(service, api_key=api_key, limits=limits),
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.service.engine is not None:
            self.service.engine.stop()
