"""Framing between lambdad and its workers: a small JSON header plus raw bytes.

Stdlib only and Python 3.8 compatible: this module is imported inside worker processes, which run
under whatever interpreter a function names.

A frame is `!II` (header length, body length), the header as JSON, then the body. Payloads travel
as the body, untouched, so a 6 MB event is never re-escaped inside another JSON document.
"""

from __future__ import annotations

import json
import os
import select
import struct

PREFIX = struct.Struct("!II")
#: A frame larger than this is a protocol error (6 MB responses plus generous headroom).
MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Bytes asked of one `read`: below malloc's mmap threshold, so a small frame costs no page faults.
READ_CHUNK = 64 * 1024


def encode(head: dict, body: bytes = b"") -> bytes:
    h = json.dumps(head, separators=(",", ":")).encode()
    return PREFIX.pack(len(h), len(body)) + h + body


def write_all(fd: int, data: bytes) -> None:
    """Write everything, also to a non-blocking descriptor (waiting until it can take more)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def send(fd: int, head: dict, body: bytes = b"") -> None:
    write_all(fd, encode(head, body))


def _read_exactly(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> tuple[dict, bytes]:
    """Blocking read of one frame. Raises EOFError when the peer is gone."""
    hlen, blen = PREFIX.unpack(_read_exactly(fd, PREFIX.size))
    head = json.loads(_read_exactly(fd, hlen))
    return head, _read_exactly(fd, blen) if blen else b""


class FrameReader:
    """Incremental decoder for a non-blocking reader: feed bytes, take whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= PREFIX.size:
            hlen, blen = PREFIX.unpack_from(self._buf)
            total = PREFIX.size + hlen + blen
            if total > MAX_FRAME_BYTES:
                raise ValueError("frame of %d bytes exceeds the limit" % total)
            if len(self._buf) < total:
                break
            head = json.loads(bytes(self._buf[PREFIX.size : PREFIX.size + hlen]))
            body = bytes(self._buf[PREFIX.size + hlen : total])
            del self._buf[:total]
            frames.append((head, body))
        return frames


class FrameStream:
    """Blocking reads of whole frames from `fd`; a small frame costs a single `read`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._reader = FrameReader()
        self._pending: list[tuple[dict, bytes]] = []

    def recv(self) -> tuple[dict, bytes]:
        """The next frame. Raises EOFError when the peer is gone."""
        while not self._pending:
            data = os.read(self.fd, READ_CHUNK)
            if not data:
                raise EOFError("peer closed the connection")
            self._pending.extend(self._reader.feed(data))
        return self._pending.pop(0)
