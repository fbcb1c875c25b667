"""The one backoff: throttled async events, failing stream batches, outbox files and failing threads."""

from __future__ import annotations

#: Lambda's backoff for throttled async events grows from 1 s to at most 5 minutes.
THROTTLE_FIRST_WAIT_S = 1.0
THROTTLE_MAX_WAIT_S = 300.0


def backoff(attempt: int, first_s: float = THROTTLE_FIRST_WAIT_S, max_s: float = THROTTLE_MAX_WAIT_S) -> float:
    """The wait after the `attempt`-th failure in a row: `first_s`, doubled each time, at most `max_s`."""
    return min(max_s, first_s * 2 ** min(max(0, attempt - 1), 64))
