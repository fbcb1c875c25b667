"""Local queues' rows: messages, FIFO deduplication ids and sequence counters. SQL only: what a
receive, a send or a redrive means is `lambdad.services.sqs_rules`' (SQS's rules over these rows);
every function here takes the times it compares with (`now`, a cut-off), so nothing reads a clock.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lambdad.sqs_vocabulary import Message, QueueDepth

__all__ = ["Message", "QueueDepth"]

_COLUMNS = ("message_id, queue, body, attributes, sent_at, receive_count, first_receive_at, group_id, dedup_id, "
            "sequence, receipt, id, system_attributes")


def message(row: tuple) -> Message:
    return Message(row[0], row[1], bytes(row[2]), json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], row[9],
                   row[10], row[11], _system(row[12]))


def _system(text: str | None) -> dict[str, str]:
    """The stored system attributes; a damaged column reads as none rather than failing a receive."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- sending ------------------------------------------------------------------------------------------


def insert(tx: sqlite3.Connection, message_id: str, queue: str, body: bytes, attributes: dict[str, Any],
           sent_at: float, visible_at: float, group: str | None, dedup_id: str | None, sequence: int | None,
           system: dict[str, str]) -> None:
    tx.execute(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at, group_id, dedup_id, sequence, "
        "system_attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, queue, body, json.dumps(attributes), sent_at, visible_at, group, dedup_id, sequence,
         json.dumps(system)),
    )


def next_sequence(tx: sqlite3.Connection, queue: str) -> int:
    tx.execute("INSERT INTO queue_sequences (queue, last) VALUES (?, 1) "
               "ON CONFLICT (queue) DO UPDATE SET last = last + 1", (queue,))
    return int(tx.execute("SELECT last FROM queue_sequences WHERE queue = ?", (queue,)).fetchone()[0])


def remembered(tx: sqlite3.Connection, queue: str, dedup_id: str, now: float) -> tuple[str, int | None] | None:
    """The message id and sequence of the message sent with `dedup_id`, while it is remembered."""
    row = tx.execute("SELECT message_id, sequence FROM dedup WHERE queue = ? AND dedup_id = ? AND expires_at > ?",
                     (queue, dedup_id, now)).fetchone()
    return None if row is None else (row[0], row[1])


def remember(tx: sqlite3.Connection, queue: str, dedup_id: str, message_id: str, sequence: int | None,
             expires_at: float) -> None:
    tx.execute("INSERT OR REPLACE INTO dedup (queue, dedup_id, message_id, sequence, expires_at) "
               "VALUES (?, ?, ?, ?, ?)", (queue, dedup_id, message_id, sequence, expires_at))


# -- receiving ----------------------------------------------------------------------------------------


def visible(tx: sqlite3.Connection, queue: str, now: float, sent_after: float, limit: int) -> list[Message]:
    """Visible messages sent after `sent_after`, by the time they became visible."""
    # (the index gives them in that order)
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND visible_at <= ? AND sent_at > ? "
                      "ORDER BY visible_at, id LIMIT ?", (queue, now, sent_after, limit)).fetchall()
    return [message(r) for r in rows]


def groups_in_flight(tx: sqlite3.Connection, queue: str, now: float) -> set[str | None]:
    # (the visibility index finds the few in flight)
    return {g for g, in tx.execute("SELECT DISTINCT group_id FROM messages WHERE queue = ? AND visible_at > ?",
                                   (queue, now))}


def groups_by_age(tx: sqlite3.Connection, queue: str) -> list[str]:
    """The queue's message groups, the one with the oldest message first."""
    # (the group index covers it)
    return [g for g, _ in tx.execute("SELECT group_id, MIN(id) AS head FROM messages WHERE queue = ? AND "
                                     "group_id IS NOT NULL GROUP BY group_id ORDER BY head", (queue,))]


def in_group(tx: sqlite3.Connection, queue: str, group: str, sent_after: float, limit: int) -> list[Message]:
    """A group's messages sent after `sent_after`, in the order they were sent."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND group_id = ? AND sent_at > ? "
                      "ORDER BY id LIMIT ?", (queue, group, sent_after, limit)).fetchall()
    return [message(r) for r in rows]


def mark_received(tx: sqlite3.Connection, row: int, now: float, visible_at: float, receipt: str) -> None:
    tx.execute("UPDATE messages SET visible_at = ?, receive_count = receive_count + 1, "
               "first_receive_at = COALESCE(first_receive_at, ?), receipt = ? WHERE id = ?",
               (visible_at, now, receipt, row))


def move(tx: sqlite3.Connection, row: int, queue: str, visible_at: float, sequence: int | None,
         system: dict[str, str], dedup_by_message_id: bool) -> None:
    """The message moves to the end of `queue` with its id, body, attributes and send time;
    `dedup_by_message_id` makes its deduplication id its message id."""
    tx.execute(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at, group_id, dedup_id, sequence, "
        "system_attributes) SELECT message_id, ?, body, attributes, sent_at, ?, group_id, "
        "CASE WHEN ? THEN message_id ELSE dedup_id END, ?, ? FROM messages WHERE id = ?",
        (queue, visible_at, dedup_by_message_id, sequence, json.dumps(system), row),
    )
    tx.execute("DELETE FROM messages WHERE id = ?", (row,))


def make_visible_at(tx: sqlite3.Connection, queue: str, receipt: str, visible_at: float, now: float) -> bool:
    """Set when the message in flight with that receipt becomes visible; False if none is in flight."""
    # (`+visible_at`: find it by its receipt's index, not by scanning the queue's messages in flight)
    cur = tx.execute("UPDATE messages SET visible_at = ? WHERE queue = ? AND receipt = ? AND +visible_at > ?",
                     (visible_at, queue, receipt, now))
    return cur.rowcount == 1


# -- removing -----------------------------------------------------------------------------------------


def delete(tx: sqlite3.Connection, queue: str, receipt: str) -> bool:
    """Delete by receipt handle; False if no message has that handle (any more)."""
    return tx.execute("DELETE FROM messages WHERE queue = ? AND receipt = ?", (queue, receipt)).rowcount == 1


def delete_ids(tx: sqlite3.Connection, message_ids: list[str]) -> int:
    """Delete messages by message id, wherever they are (one pass over the messages per 500 ids:
    there is no message-id index, which would cost every send)."""
    removed = 0
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        removed += tx.execute(f"DELETE FROM messages WHERE message_id IN ({','.join('?' * len(chunk))})",
                              chunk).rowcount
    return removed


def delete_sent_before(tx: sqlite3.Connection, queue: str, cutoff: float) -> int:
    return tx.execute("DELETE FROM messages WHERE queue = ? AND sent_at <= ?", (queue, cutoff)).rowcount


def forget_dedup(tx: sqlite3.Connection, queue: str, now: float) -> None:
    tx.execute("DELETE FROM dedup WHERE queue = ? AND expires_at <= ?", (queue, now))


def purge(tx: sqlite3.Connection, queue: str) -> int:
    return tx.execute("DELETE FROM messages WHERE queue = ?", (queue,)).rowcount


# -- looking ------------------------------------------------------------------------------------------


def peek(tx: sqlite3.Connection, queue: str, limit: int) -> list[Message]:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? ORDER BY id LIMIT ?", (queue, limit))
    return [message(r) for r in rows]


def count_visible(tx: sqlite3.Connection, queue: str, now: float, sent_after: float, cap: int) -> int:
    """Visible messages sent after `sent_after`, counted to `cap` at most (cheap on a long queue)."""
    return tx.execute("SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? "
                      "AND sent_at > ? LIMIT ?)", (queue, now, sent_after, cap)).fetchone()[0]


def depths(tx: sqlite3.Connection, now: float) -> dict[str, QueueDepth]:
    rows = tx.execute(
        "SELECT queue, SUM(visible_at <= ?), SUM(visible_at > ? AND receive_count > 0), "
        "SUM(visible_at > ? AND receive_count = 0) FROM messages GROUP BY queue",
        (now, now, now),
    ).fetchall()
    return {q: QueueDepth(v, f, d) for q, v, f, d in rows}

