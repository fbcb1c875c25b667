"""The few ASGI mechanics both HTTP faces share: headers, bounded bodies, whole responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


def header(scope: Scope, name: bytes) -> str | None:
    """The last value of a header (names in the scope are already lower-case)."""
    value = None
    for key, v in scope["headers"]:
        if key == name:
            value = v
    return None if value is None else value.decode("latin-1")


def headers_of(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body (chunked or not). Raises BodyTooLarge past `limit` bytes, before
    reading it when Content-Length says so (then a client that sent `Expect: 100-continue` is
    answered without ever sending it)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
