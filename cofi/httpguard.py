"""Limits of the local HTTP servers (denoise, LLM): a request body must announce a sane length
(missing 411, negative or not a number 400, over SERVER_MAX_BODY_MB 413) before a byte of it is read;
a client silent for SERVER_TIMEOUT_S is dropped; at most SERVER_THREADS requests run at once (503 beyond).
`BoundedHTTPServer` is for http.server servers, `BodyLimit` wraps an ASGI app (uvicorn)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from http.server import ThreadingHTTPServer
from typing import Any

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_length(content_length: str | None, max_bytes: int, chunked: bool = False) -> int:
    """The announced body length, or BodyRefused with the HTTP status to answer."""
    if content_length is None or not content_length.strip():
        if chunked:
            raise BodyRefused(411, "chunked bodies are not accepted: send Content-Length")
        raise BodyRefused(411, "Content-Length required")
    text = content_length.strip()
    if not text.isdigit():  # "-1", "1e9", "12, 12": never trusted
        raise BodyRefused(400, f"invalid Content-Length {text[:40]!r}")
    length = int(text)
    if length > max_bytes:
        raise BodyRefused(413, f"body of {length} bytes exceeds {max_bytes}")
    return length


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `threads` requests at once (503 past it) and a socket timeout."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, threads: int, timeout_s: float,
                 max_body: int) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max(1, threads))
        self.client_timeout_s = timeout_s
        self.max_body = max_body

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(2)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\n"
                                b"Retry-After: 1\r\n\r\nserver busy\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(self.client_timeout_s)
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: `body_length` on every request with a body, the body read under the same bound
    (a client sending more than it announced is cut off), and `timeout_s` for each piece of it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int,
                 timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            allowed = body_length(headers.get("content-length"), self.max_bytes,
                                  "chunked" in headers.get("transfer-encoding", "").lower())
        except BodyRefused as exc:
            await _reply(send, exc.status, str(exc))
            return
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                return {"type": "http.disconnect"}
            seen += len(message.get("body", b""))
            if seen > allowed:
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, bounded_receive, send)


async def _reply(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
