"""The one source of time. Logic takes a `Clock` (or a `now` argument); tests pass a fake one."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for payload timestamps and deadlines)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations, leases and idle timers)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()


def filesystem_ns() -> int:
    """Now on the clock the kernel stamps file times with, in nanoseconds.

    Not a `Clock` reading on purpose: it is compared with real files' mtimes, which a fake clock
    cannot move, so it stays the machine's wall clock when a test fakes the daemon's time.
    """
    return time.time_ns()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso_millis(ts: float) -> str:
    """`2019-11-14T18:16:05.568Z`, the timestamp form of AWS event payloads."""
    t = time.gmtime(ts)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}." \
           f"{int(ts * 1000) % 1000:03d}Z"
