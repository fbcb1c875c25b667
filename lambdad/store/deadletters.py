"""Every event that ended in failure, whatever its dead-letter target: what `lambdad dlq` shows and redrives."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from lambdad.store import queues


@dataclass(frozen=True)
class DeadLetter:
    id: int
    request_id: str
    function: str
    payload: bytes
    condition: str
    invocations: int
    error_type: str | None
    error_message: str | None
    response: bytes | None  #: the last invocation's error document (with its stack trace)
    target: str  #: "queue:NAME", "folder:PATH", "bucket:NAME", or "" when none is configured
    message_id: str | None  #: the copy in a local queue, when the target is one
    enqueued_at: float
    failed_at: float

    @classmethod
    def from_row(cls, row: tuple) -> DeadLetter:
        r = list(row)
        r[3] = bytes(r[3])
        r[8] = None if r[8] is None else bytes(r[8])
        return cls(*r)


_COLUMNS = (
    "id, request_id, function, payload, condition, invocations, error_type, error_message, response, target, "
    "message_id, enqueued_at, failed_at"
)


#: The highest id ever given, once dead letters were removed (ids are never given twice, so `dlq show
#: 3` never turns out to be another event); kept by removals, so adding costs nothing more.
_LAST_ID = "dead_letter_last_id"


def add(tx: sqlite3.Connection, d: DeadLetter) -> int:
    cur = tx.execute(
        f"INSERT INTO dead_letters ({_COLUMNS}) VALUES ("
        "MAX(COALESCE((SELECT MAX(id) FROM dead_letters), 0), "
        f"COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '{_LAST_ID}'), 0)) + 1, "
        f"{','.join('?' * 12)})",
        (d.request_id, d.function, d.payload, d.condition, d.invocations, d.error_type, d.error_message, d.response,
         d.target, d.message_id, d.enqueued_at, d.failed_at),
    )
    return int(cur.lastrowid or 0)


def listing(tx: sqlite3.Connection, function: str | None = None, target: str | None = None) -> list[DeadLetter]:
    query, args = f"SELECT {_COLUMNS} FROM dead_letters WHERE 1=1", []
    if function:
        query, args = query + " AND function = ?", [*args, function]
    if target:
        query, args = query + " AND target = ?", [*args, target]
    return [DeadLetter.from_row(r) for r in tx.execute(query + " ORDER BY id", args)]


def get(tx: sqlite3.Connection, ids: list[int]) -> list[DeadLetter]:
    found = []
    for i in ids:
        row = tx.execute(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (i,)).fetchone()
        if row:
            found.append(DeadLetter.from_row(row))
    return found


def remove(tx: sqlite3.Connection, ids: list[int]) -> int:
    """Forget dead letters, and their copies in local queues."""
    found = get(tx, ids)
    tx.execute(f"INSERT INTO meta (key, value) SELECT '{_LAST_ID}', last FROM (SELECT MAX(id) AS last FROM "
               "dead_letters) WHERE last IS NOT NULL ON CONFLICT (key) DO UPDATE SET "
               "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))")
    queues.delete_ids(tx, [d.message_id for d in found if d.message_id])
    return sum(tx.execute("DELETE FROM dead_letters WHERE id = ?", (d.id,)).rowcount for d in found)


def count_by_function(tx: sqlite3.Connection) -> dict[str, int]:
    return dict(tx.execute("SELECT function, COUNT(*) FROM dead_letters GROUP BY function").fetchall())
