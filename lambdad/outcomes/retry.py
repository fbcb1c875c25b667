"""Lambda's retry policy for asynchronous invocation, as pure decisions over plain values.

- A function error uses up an attempt; the waits before retry 1 and 2 are `backoff_s`.
- A throttle does not; it is retried after 1 s, 2 s, 4 s ... up to 5 minutes.
- Either way an event whose next try would fall past `maximum_event_age` ends now
  (EventAgeExceeded), as does one found too old when claimed.
- `reserved_concurrency: 0` fails new events at once (ZeroReservedConcurrency).
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdad.backoff import backoff
from lambdad.manifest.model import AsyncConfig
from lambdad.payloads.destinations import Condition


@dataclass(frozen=True)
class RetryAt:
    due_at: float


@dataclass(frozen=True)
class Final:
    condition: Condition


Decision = RetryAt | Final


def on_claim(cfg: AsyncConfig, reserved: int | None, enqueued_at: float, now: float) -> Final | None:
    """Before an invocation: should the event end without running?"""
    if reserved == 0:
        return Final(Condition.zero_reserved_concurrency)
    if now - enqueued_at > cfg.maximum_event_age_s:
        return Final(Condition.event_age_exceeded)
    return None


def after_function_error(cfg: AsyncConfig, errors: int, enqueued_at: float, now: float) -> Decision:
    """`errors` counts this failure too."""
    if errors > cfg.maximum_retry_attempts:
        return Final(Condition.retries_exhausted)
    waits = cfg.backoff_s or (0.0,)
    return _unless_too_old(cfg, enqueued_at, now + waits[min(errors, len(waits)) - 1])


def after_throttle(cfg: AsyncConfig, throttles: int, enqueued_at: float, now: float) -> Decision:
    """`throttles` counts this throttle too."""
    return _unless_too_old(cfg, enqueued_at, now + backoff(throttles))


def _unless_too_old(cfg: AsyncConfig, enqueued_at: float, due_at: float) -> Decision:
    if due_at - enqueued_at > cfg.maximum_event_age_s:
        return Final(Condition.event_age_exceeded)
    return RetryAt(due_at)
