"""Files still to be written to folders and buckets (dead letters and destination records).

A file cannot be part of a SQLite transaction, so the outcome's transaction records the file here
and a deliverer writes it afterwards; a folder that cannot be written is retried, never dropped.
A write refused because it would leave its folder (a link inside it) stays here too, with the
reason in `last_error`, until the link is gone.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingFile:
    id: int
    folder: str
    name: str  #: relative path inside `folder`
    content: bytes
    function: str
    attempts: int
    last_error: str | None = None


def add(tx: sqlite3.Connection, folder: str, name: str, content: bytes, function: str, now: float) -> None:
    tx.execute(
        "INSERT INTO outbox (folder, name, content, function, due_at) VALUES (?, ?, ?, ?, ?)",
        (folder, name, content, function, now),
    )


def due(tx: sqlite3.Connection, now: float, limit: int = 100) -> list[PendingFile]:
    rows = tx.execute(
        "SELECT id, folder, name, content, function, attempts, last_error FROM outbox WHERE due_at <= ? ORDER BY id "
        "LIMIT ?",
        (now, limit),
    ).fetchall()
    return [PendingFile(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]


def next_due(tx: sqlite3.Connection) -> float | None:
    return tx.execute("SELECT MIN(due_at) FROM outbox").fetchone()[0]


def done(tx: sqlite3.Connection, file_id: int) -> None:
    tx.execute("DELETE FROM outbox WHERE id = ?", (file_id,))


def failed(tx: sqlite3.Connection, file_id: int, error: str, retry_at: float) -> None:
    tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, due_at = ? WHERE id = ?", (error, retry_at, file_id)
    )


def count(tx: sqlite3.Connection) -> int:
    return int(tx.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
