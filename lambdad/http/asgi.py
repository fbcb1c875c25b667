"""The few ASGI mechanics both HTTP faces share: headers, bounded bodies, whole responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lambdad.errors import InvalidRequestContent, RequestAborted, RequestTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(RequestTooLarge):
    """Past the face's limit; each face words its own answer (Lambda's, ALB's, API Gateway's)."""


def header(scope: Scope, name: bytes) -> str | None:
    """The last value of a header (names in the scope are already lower-case)."""
    value = None
    for key, v in scope["headers"]:
        if key == name:
            value = v
    return None if value is None else value.decode("latin-1")


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body (chunked or not). Raises BodyTooLarge past `limit` bytes, before
    reading it when Content-Length says so (then a client that sent `Expect: 100-continue` is
    answered without ever sending it).

    Raises:
        RequestAborted: the client went away before the last byte (or sent fewer bytes than its
            Content-Length): a partial body is never handed on, so an aborted upload runs nothing.
    """
    declared = header(scope, b"content-length")
    expected = None
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidRequestContent(f"Content-Length {declared[:40]!r} is not a number")
        if len(declared) > len(str(limit)) or int(declared) > limit:  # (no int() of 5,000 digits)
            raise BodyTooLarge(f"the body must be at most {limit} bytes")
        expected = int(declared)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted(f"the client closed the connection after {size} bytes of the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body must be at most {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    if expected is not None and size != expected:
        raise RequestAborted(f"the body has {size} bytes, but its Content-Length says {expected}")
    return b"".join(chunks)


def without_content(status: int) -> bool:
    """RFC 9110: a 1xx, 204, 205 or 304 response has no content. A body sent after one would be read,
    on a kept-alive connection, as the start of the next response."""
    return status < 200 or status in (204, 205, 304)


async def respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
    """A whole response. A 1xx, 204, 205 or 304 goes without its body: a 1xx or 204 without Content-Length
    too (RFC 9110 forbids it there), a 205 with `Content-Length: 0` (as RFC 9110 asks), a 304 without
    (its own would have to be the 200's, which is not known here)."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if without_content(status):
        body = b""
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
