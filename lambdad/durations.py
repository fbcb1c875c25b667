"""Durations as the manifest and the CLI write them: `90`, `1.5`, `250ms`, `90s`, `5m`, `6h`, `2d`."""

from __future__ import annotations

import re

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: int | float | str) -> float:
    """Seconds in `value`; a bare number means seconds.

    Raises:
        ValueError: with a message fit to show the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a duration: use seconds (90) or a string such as 90s, 5m, 6h")
    return float(m.group(1)) * _UNITS_S[m.group(2) or ""]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 90 -> '90s', 300 -> '5m', 21600 -> '6h', 0.25 -> '250ms'."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_S[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms"
