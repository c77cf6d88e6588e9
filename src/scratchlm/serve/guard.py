"""The outer guard of the HTTP API, before any parsing: the API key and the size of a request body.

ASGI middleware around the app: 401 without the right bearer key (when one is set; the chat page at `/`
holds no data and is always served), 413 for a body over the cap, by its Content-Length or counted while it
streams in.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from scratchlm.serve.openai_api import APIError


class _BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app, api_key: str | None, max_body: int) -> None:
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.api_key and scope["path"] != "/" and not self._authorized(headers):
            error = APIError(
                401,
                "invalid or missing API key (Authorization: Bearer …)",
                "authentication_error",
                code="invalid_api_key",
            )
            return await send_error(send, error)
        too_large = APIError(413, f"the request body is over {self.max_body} bytes")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await send_error(send, too_large)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await send_error(send, too_large)

    def _authorized(self, headers: dict) -> bool:
        given = headers.get(b"authorization", b"").decode("latin-1")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        return hmac.compare_digest(token.encode(), self.api_key.encode())


async def send_error(send: Callable, error: APIError) -> None:
    """An APIError as a whole ASGI response (for use outside the app's own error handlers)."""
    response = error.response()
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
