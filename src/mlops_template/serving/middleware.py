"""Refuse oversized and non-JSON requests before BentoML reads them.

BentoML parses a whole request body whatever its size (a 45 MB body was parsed here before the
400), and falls back to JSON for any content type. This ASGI middleware sits in front of the
API routes: a declared Content-Length over the limit gets 413 at once; a body without one is
counted as it streams in and cut off with 413 as soon as it passes the limit; a POST whose
Content-Type is not JSON gets 415. The accepted body is then handed on unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json",)


class RequestLimits:
    """ASGI middleware: body size limit (413) and JSON-only POST bodies (415)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type")
        if content_type is not None:
            media = content_type.split(";")[0].strip().lower()
            if media not in JSON_TYPES:
                await _reply(
                    send,
                    415,
                    f"unsupported Content-Type {media!r}: send the request as application/json",
                )
                return
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _reply(send, 400, f"invalid Content-Length header {declared!r}")
                return
            if int(declared) > self.max_body_bytes:
                await _reply(send, 413, self._too_large())
                return
        body = await self._read_body(receive, send)
        if body is None:
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return (
            f"request body is larger than the limit of {self.max_body_bytes} bytes: "
            "send fewer instances per request"
        )

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None when it passed the limit (413 sent) or the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _reply(send, 413, self._too_large())
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send: Send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
