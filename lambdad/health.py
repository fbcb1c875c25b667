"""Which long-running parts of the daemon cannot do their work right now, and why.

A thread that fails (its writes hit a full disk, a bug in one round) must not die and must not
spam: it reports `failing(component, error)` on every failed try and waits what that returns
(one backoff policy, `lambdad.backoff`); it reports `recovered(component)` after its next
good round. The first failure and the recovery are said once each on the console; meanwhile
`failures()` is what `lambdad status` shows (the daemon writes it into daemon.json).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lambdad.backoff import backoff
from lambdad.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

#: A failing thread retries after 1 s, 2 s, 4 s ... at most this long apart (a freed disk is used soon).
MAX_RETRY_WAIT_S = 30.0

#: How the console names each component.
LABELS = {
    "buckets": "the bucket watcher",
    "buckets:loop": "the bucket watcher's thread",
    "dispatcher": "the async dispatcher",
    "outbox": "the file outbox",
    "sqs": "the SQS poller",
    "streams": "the stream poller",
    "schedules": "the scheduler",
    "logs": "the log writer",
    "state": "the state folder",
    "runtimes": "starting the runtimes",
}


@dataclass
class Failure:
    error: str
    since: float  #: wall-clock time of the first failure in a row
    attempts: int


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}{f': {error.filename}' if error.filename else ''}"
    return str(error) or type(error).__name__


class Health:
    def __init__(
        self,
        say: Callable[[str], None] | None = None,
        on_change: Callable[[], None] = lambda: None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`clock` stamps when a failure began (wall time: `lambdad status` shows it as a date)."""
        self._say = say or log.warning
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[str, Failure] = {}

    def failing(self, component: str, error: BaseException | str) -> float:
        """Record a failed try; returns how long to wait before the next one."""
        text = describe(error)
        with self._lock:
            failure = self._failing.get(component)
            first = failure is None
            if failure is None:
                failure = self._failing[component] = Failure(text, self._clock.time(), 0)
            failure.attempts += 1
            failure.error = text
            attempts = failure.attempts
        if first:
            if isinstance(error, BaseException) and not _expected(error):  # a bug: its traceback, once
                log.error("%s failed unexpectedly", LABELS.get(component, component), exc_info=error)
            self._say(f"{LABELS.get(component, component)} failed: {text}; retrying with backoff, nothing "
                      "accepted is lost (`lambdad status` shows it until it works again)")
            self._on_change()
        return backoff(attempts, max_s=MAX_RETRY_WAIT_S)

    def recovered(self, component: str) -> None:
        if component not in self._failing:  # the usual case: no lock
            return
        with self._lock:
            failure = self._failing.pop(component, None)
        if failure is None:
            return
        self._say(f"{LABELS.get(component, component)} works again (after {failure.attempts} failed "
                  f"attempt(s) over {max(0.0, self._clock.time() - failure.since):.0f}s)")
        self._on_change()

    def is_failing(self, component: str) -> bool:
        return component in self._failing

    def failures(self) -> dict[str, Failure]:
        with self._lock:
            return {k: Failure(v.error, v.since, v.attempts) for k, v in self._failing.items()}


def _expected(error: BaseException) -> bool:
    """The machine said no (a full disk, a locked or vanished file): the message says it all."""
    import sqlite3

    return isinstance(error, OSError | sqlite3.OperationalError)
