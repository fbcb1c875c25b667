"""Asynchronous invocations: the one way an event gets into the durable queue, and its dead letters.

Every event gets its request id and its trace header once, here, for good: all its attempts see
the same `context.aws_request_id` and belong to one trace (whose Lineage counts the chain of events
for recursive-loop detection). Two doors, one write:

- `enqueue`: what a caller sends (the Invoke API's `Event`, `lambdad invoke`), checked as Lambda's
  Invoke checks it (the function exists, the payload is JSON within 1 MiB), committed, and the
  dispatcher woken.
- `queue_event(tx, ...)`: what the daemon itself builds from its manifest (bucket notifications,
  schedule runs, destination records, redrives), inside the caller's transaction, so that it
  commits with the caller's own change (a bucket's index update, a settled outcome). The caller
  wakes the dispatcher after its commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from lambdad.clock import Clock
from lambdad.errors import FunctionNotFound, UsageError
from lambdad.ids import new_request_id
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import check_payload
from lambdad.store import Store, deadletters, invocations
from lambdad.store.deadletters import DeadLetter
from lambdad.tracing import for_invocation

#: Lambda's limit on an asynchronous invocation's payload (raised from 256 KB in October 2025).
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FunctionCounts:
    """A function's async events by where they are, and its outcomes so far (`lambdad status`)."""

    in_flight: int = 0  #: leased by the daemon, being invoked
    queued: int = 0  #: waiting, never tried
    retrying: int = 0  #: waiting after a failed or throttled try
    dead_lettered: int = 0  #: failed for good, kept as dead letters
    succeeded: int = 0
    failed: int = 0


def queue_event(
    tx: sqlite3.Connection,
    function: str,
    payload: bytes,
    now: float,
    source: str,
    *,
    request_id: str | None = None,
    trace: str | None = None,
    hops: int = 0,
) -> str:
    """Queue an event in `tx`; returns its request id. `trace` is the header of what caused it (None:
    nothing traced did), continued for the invocations; `hops` counts destinations in a chain."""
    request_id = request_id or new_request_id()
    invocations.enqueue(tx, request_id, function, payload, now, source, hops, for_invocation(trace, function, now))
    return request_id


class AsyncInvocations:
    def __init__(self, store: Store, clock: Clock, manifest: Manifest,
                 on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.clock = clock
        self.manifest = manifest
        self._on_enqueued = on_enqueued

    def apply(self, manifest: Manifest) -> None:
        """A reload: the functions events may be sent to."""
        self.manifest = manifest

    def enqueue(self, function: str, payload: bytes, source: str = "invoke", *, request_id: str | None = None,
                trace: str | None = None, tx: sqlite3.Connection | None = None) -> str:
        """Accept an invocation: checked, committed (with `tx`, when the caller commits it), and given
        its request id and trace header (continuing `trace`, the caller's, if it sent one).

        Raises:
            FunctionNotFound: the manifest has no such function.
            RequestTooLarge: over 1 MiB.
            InvalidRequestContent: not JSON.
        """
        if function not in self.manifest.functions:
            raise FunctionNotFound(function, list(self.manifest.functions))
        payload = check_payload(payload, MAX_ASYNC_PAYLOAD_BYTES)
        now = self.clock.time()
        if tx is not None:
            return queue_event(tx, function, payload, now, source, request_id=request_id, trace=trace)
        request_id = self.store.write(
            lambda tx: queue_event(tx, function, payload, now, source, request_id=request_id, trace=trace))
        self._on_enqueued()
        return request_id

    def counts(self) -> dict[str, FunctionCounts]:
        """Every function that has events, outcomes or dead letters (in the manifest or no longer),
        read in one transaction so the figures agree with each other."""
        with self.store.reading() as tx:
            waiting, outcomes = invocations.counts(tx), invocations.stats(tx)
            dead = deadletters.count_by_function(tx)
        out = {}
        for name in set(waiting) | set(outcomes) | set(dead):
            w = waiting.get(name, invocations.QueueCounts())
            succeeded, failed = outcomes.get(name, (0, 0))
            out[name] = FunctionCounts(w.in_flight, w.queued, w.retrying, dead.get(name, 0), succeeded, failed)
        return out

    # -- dead letters ---------------------------------------------------------------------------------

    def dead_letters(self, function: str | None = None, target: str | None = None) -> list[DeadLetter]:
        with self.store.reading() as tx:
            return deadletters.listing(tx, function, target)

    def dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        with self.store.reading() as tx:
            found = deadletters.get(tx, [dead_letter_id])
        return found[0] if found else None

    def redrive(self, ids: list[int] | None, function: str | None = None) -> int:
        """Queue dead letters again, as new events, and forget them, in one transaction (nothing is
        redriven twice); returns how many. `ids` None: every dead letter (of `function`).

        Raises:
            UsageError: no dead letter has one of `ids` (nothing is redriven).
            FunctionNotFound: a chosen event's function is no longer in the manifest (nothing is redriven).
        """
        now = self.clock.time()

        def redrive(tx: sqlite3.Connection) -> int:
            chosen = _chosen(tx, ids, function)
            gone = sorted({d.function for d in chosen} - set(self.manifest.functions))
            if gone:
                raise FunctionNotFound(gone[0], list(self.manifest.functions))
            for d in chosen:
                queue_event(tx, d.function, d.payload, now, "redrive")
            deadletters.remove(tx, [d.id for d in chosen])
            return len(chosen)

        with self.store.transaction() as tx:
            count = redrive(tx)
        self._on_enqueued()
        return count

    def purge(self, function: str | None = None) -> int:
        """Forget the dead letters (of `function`), and their copies in local queues; returns how many."""
        with self.store.transaction() as tx:
            return deadletters.remove(tx, [d.id for d in deadletters.listing(tx, function)])


def _chosen(tx: sqlite3.Connection, ids: list[int] | None, function: str | None) -> list[DeadLetter]:
    if ids is None:
        return deadletters.listing(tx, function)
    found = deadletters.get(tx, ids)
    missing = sorted(set(ids) - {d.id for d in found})
    if missing:
        raise UsageError(f"no dead letter with id {', '.join(map(str, missing))} (see lambdad dlq list)")
    return found
