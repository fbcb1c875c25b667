"""A whole response as the listener hands it to the server: which statuses go without content (RFC 9110), and
which of those without Content-Length."""

from __future__ import annotations

import asyncio

import pytest

from lambdad.http.asgi import respond


@pytest.mark.parametrize(("status", "content_length", "body"), [
    (200, b"2", b"{}"),
    (404, b"2", b"{}"),
    (205, b"0", b""),  # Reset Content: none, and says so
    (204, None, b""),
    (304, None, b""),
    (100, None, b""),
    (101, None, b""),
    (199, None, b""),
])
def test_what_each_status_sends(status: int, content_length: bytes | None, body: bytes):
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(respond(send, status, [("content-type", "application/json")], b"{}"))
    start, content = sent
    assert start["status"] == status and (b"content-type", b"application/json") in start["headers"]
    assert dict(start["headers"]).get(b"content-length") == content_length
    assert content == {"type": "http.response.body", "body": body}
