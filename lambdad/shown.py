"""Values as messages show them: short, and on one line, whatever the value (a 5000-digit number, a
key with a line break in it) - so that every problem stays one readable line."""

from __future__ import annotations

#: A value longer than this is shortened in messages.
SHOWN_CHARS = 60

#: Every character `str.splitlines` breaks at, escaped: a message must stay one line however it is split.
_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


def shown(value: object) -> str:
    """`repr(value)` for a message, shortened when long (int's repr even fails past 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = len(str(abs(value))) if value.bit_length() < 14000 else "many"
        return f"a {digits}-digit number"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 5]}...{text[-1]}"


def one_line(text: str) -> str:
    """`text` with its line breaks escaped."""
    return text.translate(_LINE_BREAKS)
