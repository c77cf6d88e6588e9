"""`scratchlm chat` with piped input and `scratchlm serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from scratchlm.data.templates import get_template, save_template
from scratchlm.formats.model_files import save_model
from tests.tiny import tiny_gpt


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, trained):
    model = tiny_gpt(vocab_size=trained.vocab_size, context_length=96, n_layers=1)
    path = tmp_path_factory.mktemp("model")
    save_model(model, path, trained)
    save_template(get_template("chatml"), path)
    return path


def scratchlm(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "scratchlm", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_chat_reads_messages_from_a_pipe(model_dir):
    out = scratchlm(
        "chat", "--model", str(model_dir), "--max-tokens", "5", "--inspect", stdin="hi\n/temp 0\nbye\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("%   | ") >= 2  # --inspect lines of both replies
    assert "temperature 0" in out.stdout


def test_chat_refuses_a_missing_model(tmp_path):
    out = scratchlm("chat", "--model", str(tmp_path / "nope"))
    assert (
        out.returncode == 2 and out.stderr.startswith("scratchlm: error:") and "Traceback" not in out.stderr
    )


def test_serve_answers_over_http(model_dir):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scratchlm", "serve", "--model", str(model_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCRATCHLM_API_KEY": ""},
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        proc.stderr.read() if proc.poll() is not None else "no server"
                    ) from None
                time.sleep(0.2)
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            reply = json.loads(r.read())
        assert reply["object"] == "chat.completion" and reply["model"] == model_dir.name
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
