"""The durable queue of asynchronous invocations.

An event is a row from the moment `enqueue` commits until it reaches a final outcome, when it is
deleted in the same transaction that records the outcome. Claims are leases (`leased_until`), not
deletes, so an event whose daemon died mid-invocation is invoked again (at least once, as Lambda).
All times are wall-clock epoch seconds: they must mean the same thing after a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

_COLUMNS = (
    "id, request_id, function, payload, source, hops, enqueued_at, due_at, invocations, errors, throttles, "
    "last_error, last_response, trace"
)


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    request_id: str
    function: str
    payload: bytes
    source: str
    hops: int
    enqueued_at: float
    due_at: float
    invocations: int  #: times the function actually ran for this event (approximateInvokeCount)
    errors: int  #: function errors so far (each uses up an attempt)
    throttles: int  #: throttled tries in a row (they do not use up attempts)
    last_error: str | None  #: errorType of the last failed invocation
    last_response: bytes | None  #: the last failed invocation's response document
    #: The invocations' `_X_AMZN_TRACE_ID`, fixed when the event is accepted: every retry is part of one
    #: trace, and its Lineage counts the chain of events this one belongs to (recursive loops).
    trace: str | None = None

    @classmethod
    def from_row(cls, row: tuple) -> QueuedEvent:
        return cls(*row[:3], bytes(row[3]), *row[4:12], None if row[12] is None else bytes(row[12]), row[13])


def enqueue(
    tx: sqlite3.Connection,
    request_id: str,
    function: str,
    payload: bytes,
    now: float,
    source: str = "invoke",
    hops: int = 0,
    trace: str | None = None,
) -> None:
    """Queue an event; `trace` is its invocations' trace header (see `services.asyncinvoke`)."""
    tx.execute(
        "INSERT INTO events (request_id, function, payload, source, hops, enqueued_at, due_at, trace) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (request_id, function, payload, source, hops, now, now, trace),
    )


def claim(
    tx: sqlite3.Connection, functions: Iterable[str], now: float, lease_s: float, limit: int
) -> list[QueuedEvent]:
    """Lease up to `limit` due events of `functions`, oldest due first."""
    names = list(functions)
    if not names or limit <= 0:
        return []
    marks = ",".join("?" * len(names))
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM events WHERE leased_until IS NULL AND due_at <= ? AND function IN ({marks}) "
        "ORDER BY due_at, id LIMIT ?",
        (now, *names, limit),
    ).fetchall()
    if rows:
        tx.executemany("UPDATE events SET leased_until = ? WHERE id = ?", [(now + lease_s, r[0]) for r in rows])
    return [QueuedEvent.from_row(r) for r in rows]


def orphans(tx: sqlite3.Connection, known: list[str], enqueued_before: float) -> list[QueuedEvent]:
    """Waiting events of functions not in `known`, accepted before `enqueued_before`."""
    marks = ",".join("?" * len(known)) or "''"
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM events WHERE leased_until IS NULL AND function NOT IN ({marks}) AND enqueued_at < ?",
        (*known, enqueued_before),
    ).fetchall()
    return [QueuedEvent.from_row(r) for r in rows]


def next_due(tx: sqlite3.Connection) -> float | None:
    row = tx.execute("SELECT MIN(due_at) FROM events WHERE leased_until IS NULL").fetchone()
    return row[0]


def retry_later(
    tx: sqlite3.Connection,
    event_id: int,
    due_at: float,
    *,
    invoked: bool,
    error: str | None = None,
    response: bytes | None = None,
    throttled: bool = False,
) -> None:
    """Put a claimed event back, due at `due_at`; count what this try did."""
    tx.execute(
        "UPDATE events SET leased_until = NULL, due_at = ?, invocations = invocations + ?, "
        "errors = errors + ?, throttles = CASE WHEN ? THEN throttles + 1 ELSE 0 END, "
        "last_error = COALESCE(?, last_error), last_response = COALESCE(?, last_response) WHERE id = ?",
        (due_at, int(invoked), int(not throttled and invoked), throttled, error, response, event_id),
    )


def set_trace(tx: sqlite3.Connection, event_id: int, trace: str) -> None:
    """The event continues another chain than it was accepted with (the invocation that wrote its file)."""
    tx.execute("UPDATE events SET trace = ? WHERE id = ?", (trace, event_id))


def release(tx: sqlite3.Connection, event_ids: Iterable[int]) -> None:
    """Give claimed events back untouched (a graceful stop before they ran)."""
    tx.executemany("UPDATE events SET leased_until = NULL WHERE id = ?", [(i,) for i in event_ids])


def release_all(tx: sqlite3.Connection) -> int:
    """At start-up: every lease belongs to a daemon that is gone (only one can hold the state folder)."""
    return tx.execute("UPDATE events SET leased_until = NULL WHERE leased_until IS NOT NULL").rowcount


def delete(tx: sqlite3.Connection, event_id: int) -> None:
    tx.execute("DELETE FROM events WHERE id = ?", (event_id,))


@dataclass(frozen=True)
class QueueCounts:
    queued: int = 0  #: waiting, never tried
    retrying: int = 0  #: waiting after a failed or throttled try
    in_flight: int = 0  #: leased by the daemon


def counts(tx: sqlite3.Connection) -> dict[str, QueueCounts]:
    rows = tx.execute(
        "SELECT function, "
        "SUM(leased_until IS NULL AND errors = 0 AND throttles = 0), "
        "SUM(leased_until IS NULL AND (errors > 0 OR throttles > 0)), "
        "SUM(leased_until IS NOT NULL) FROM events GROUP BY function"
    ).fetchall()
    return {fn: QueueCounts(q, r, f) for fn, q, r, f in rows}


def bump_stats(tx: sqlite3.Connection, function: str, succeeded: bool) -> None:
    column = "succeeded" if succeeded else "failed"
    tx.execute(
        f"INSERT INTO stats (function, {column}) VALUES (?, 1) "
        f"ON CONFLICT(function) DO UPDATE SET {column} = {column} + 1",
        (function,),
    )


def stats(tx: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    return {fn: (s, f) for fn, s, f in tx.execute("SELECT function, succeeded, failed FROM stats")}
