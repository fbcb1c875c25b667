"""uvicorn's httptools protocol with the limits a front server puts on a client (`HttpLimits`).

uvicorn bounds neither the headers' size (httptools buffers a header until its line ends, however
long) nor the time a client takes to send them, and it arms its keep-alive timer only after a
response, so a connection that never sends a byte stays open. Here:
- the request line and headers together get `header_bytes` (counted as they arrive, before the
  parser buffers them); past it the client gets 431 and the connection closes;
- a connection is closed when it is idle for `keep_alive_s`, fresh or after a response;
- a request's headers must be complete `header_timeout_s` after its connection opened (or, on a
  kept-alive connection, after its first byte); then the client gets 408 and the connection closes.
A pipelined request that arrives in the same read as the one before it is counted from the next read
on: at most one read buffer more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lambdad.manifest.model import HttpLimits

_END = b"\r\n\r\n"


def _status(code: int, reason: str) -> bytes:
    body = f"{code} {reason}\n".encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class LimitedProtocol(HttpToolsProtocol):
    limits: HttpLimits = HttpLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._tail = b""  #: the last bytes of the previous read (a header end may straddle two reads)
        self._in_headers = True
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_data = False  #: bytes of this request's headers have arrived
        self._arm_header_timer()
        self.timeout_keep_alive_task = self.loop.call_later(self.limits.keep_alive_s, self.timeout_keep_alive_handler)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, answer: bytes | None) -> None:
        self._disarm_header_timer()
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(_status(408, "Request Timeout") if self._header_data else None)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._in_headers and data:
            self._header_data = True
            seen = self._tail + data
            end = seen.find(_END)
            self._header_bytes += len(data) if end < 0 else max(0, end + len(_END) - len(self._tail))
            if self._header_bytes > self.limits.header_bytes:
                self._refuse(_status(431, "Request Header Fields Too Large"))
                return
            self._tail = seen[-(len(_END) - 1):]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers, self._header_bytes, self._tail, self._header_data = True, 0, b"", False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def limited_protocol(limits: HttpLimits) -> type[Any]:
    """The protocol class for uvicorn's `http=`: one per set of limits."""
    return type("LimitedProtocol", (LimitedProtocol,), {"limits": limits})
