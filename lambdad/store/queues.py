"""Local queues: durable messages with SQS's visibility rules (dead-letter and destination targets)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from lambdad.runtime.invocation import new_request_id


@dataclass(frozen=True)
class Message:
    message_id: str
    queue: str
    body: bytes
    attributes: dict[str, Any]  #: SQS message attributes: {"Name": {"DataType": ..., "StringValue": ...}}
    sent_at: float
    receive_count: int
    first_receive_at: float | None

    @classmethod
    def from_row(cls, row: tuple) -> Message:
        return cls(row[0], row[1], bytes(row[2]), json.loads(row[3]), row[4], row[5], row[6])


_COLUMNS = "message_id, queue, body, attributes, sent_at, receive_count, first_receive_at"


def send(tx: sqlite3.Connection, queue: str, body: bytes, now: float, attributes: dict[str, Any] | None = None,
         delay_s: float = 0.0) -> str:
    message_id = new_request_id()
    tx.execute(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)",
        (message_id, queue, body, json.dumps(attributes or {}), now, now + delay_s),
    )
    return message_id


def receive(tx: sqlite3.Connection, queue: str, now: float, visibility_s: float, limit: int) -> list[Message]:
    """SQS ReceiveMessage: visible messages become invisible for `visibility_s`; each receive is counted."""
    rows = tx.execute(
        f"SELECT id, {_COLUMNS} FROM messages WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT ?",
        (queue, now, limit),
    ).fetchall()
    tx.executemany(
        "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1, "
        "first_receive_at = COALESCE(first_receive_at, ?) WHERE id = ?",
        [(now + visibility_s, now, r[0]) for r in rows],
    )
    return [
        Message.from_row((*r[1:6], r[6] + 1, r[7] if r[7] is not None else now)) for r in rows
    ]


def peek(tx: sqlite3.Connection, queue: str, limit: int) -> list[Message]:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? ORDER BY id LIMIT ?", (queue, limit))
    return [Message.from_row(r) for r in rows]


def delete(tx: sqlite3.Connection, message_ids: list[str]) -> int:
    return sum(tx.execute("DELETE FROM messages WHERE message_id = ?", (m,)).rowcount for m in message_ids)


def purge(tx: sqlite3.Connection, queue: str) -> int:
    return tx.execute("DELETE FROM messages WHERE queue = ?", (queue,)).rowcount


@dataclass(frozen=True)
class QueueDepth:
    visible: int = 0
    in_flight: int = 0  #: received, not deleted, still invisible
    delayed: int = 0  #: sent with a delay that has not passed (never received)


def depths(tx: sqlite3.Connection, now: float) -> dict[str, QueueDepth]:
    rows = tx.execute(
        "SELECT queue, SUM(visible_at <= ?), SUM(visible_at > ? AND receive_count > 0), "
        "SUM(visible_at > ? AND receive_count = 0) FROM messages GROUP BY queue",
        (now, now, now),
    ).fetchall()
    return {q: QueueDepth(v, f, d) for q, v, f, d in rows}
