"""Ids AWS gives out: request ids, message ids (random version 4 UUIDs)."""

from __future__ import annotations

import os


def new_request_id() -> str:
    """A random (version 4) UUID, formatted directly: `uuid.uuid4()` costs more than the whole log line."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

