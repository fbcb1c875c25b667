"""Durations as the manifest and the CLI write them: `90`, `1.5`, `250ms`, `90s`, `5m`, `6h`, `2d`."""

from __future__ import annotations

import math
import re

from lambdad.shown import shown

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: int | float | str) -> float:
    """Seconds in `value`; a bare number means seconds.

    The result is always a finite, non-negative float: NaN, infinities and numbers too large for a
    float are refused here, because every timer, lease and SQL comparison downstream would
    silently misbehave on them (a NaN visibility timeout makes a message undeliverable forever).

    Raises:
        ValueError: with a message fit to show the user.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{shown(value)} is not a duration")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"{shown(value)} is too large for a duration") from None
        if math.isnan(seconds):
            raise ValueError(f"{value!r} is not a duration: it must be a finite number of seconds")
        if seconds < 0:
            raise ValueError(f"{shown(value)} is negative")
    else:
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{shown(value)} is not a duration: use seconds (90) or a string such as 90s, 5m, 6h")
        seconds = float(m.group(1)) * _UNITS_S[m.group(2) or ""]
    if math.isinf(seconds):
        raise ValueError(f"{shown(value)} is too large for a duration")
    return seconds + 0.0  # -0.0 becomes 0.0


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 90 -> '90s', 300 -> '5m', 21600 -> '6h', 0.25 -> '250ms'."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_S[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms"
