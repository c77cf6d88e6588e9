"""A fake OpenAI-compatible chat endpoint on 127.0.0.1 (http.server in a thread), scripted per request: the
LLM-judge tests' stand-in for Ollama or vLLM."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeJudge:
    """Answers POST /v1/chat/completions from a script of (status, reply text or raw body, delay, headers);
    the last entry repeats. Records every request body and header."""

    def __init__(self) -> None:
        self.script: list[tuple] = [(200, "50", 0.0, {})]
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                status, reply, delay, headers = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                time.sleep(delay)
                if isinstance(reply, bytes):
                    payload = reply
                elif status == 200:
                    message = {"role": "assistant", "content": reply}
                    payload = json.dumps(
                        {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}
                    )
                else:
                    payload = json.dumps({"error": {"message": reply, "type": "server_error"}})
                payload = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
