"""Local queues with SQS's rules: visibility timeouts, receive counts, redrive to a dead-letter
queue, retention, delays, and for FIFO queues order per message group, groups held while one of
their messages is in flight, and deduplication within five minutes.

Every function takes `now`: the rules are pure time arithmetic over rows, so the component tests
drive them with a fake clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

from lambdad.errors import ProtocolError
from lambdad.manifest.model import Queue
from lambdad.runtime.invocation import new_request_id

#: SQS remembers a FIFO queue's deduplication ids for five minutes.
DEDUP_WINDOW_S = 300.0
#: SQS limits: per-message delay, visibility timeout, messages per receive.
MAX_DELAY_S = 900
MAX_VISIBILITY_S = 12 * 3600
MAX_RECEIVE = 10
#: The `SenderId` attribute of messages sent locally.
SENDER_ID = "AIDALAMBDADLOCAL"
#: The attribute a redrive policy gives a message it moves: the ARN of the queue it came from.
DLQ_SOURCE_ARN = "DeadLetterQueueSourceArn"
#: The one message system attribute a sender may set: its X-Ray trace header.
TRACE_HEADER = "AWSTraceHeader"
#: FIFO sequence numbers look like SQS's: 20 digits, growing in large steps. The store keeps
#: a counter per queue (1, 2, 3...); the number shown is this base plus the counter times the step.
SEQUENCE_BASE = 18_849_496_460_467_696_128
SEQUENCE_STEP = 2**16


def sequence_number(counter: int) -> str:
    """The `SequenceNumber` of a FIFO queue's `counter`th message: it grows with the counter, so
    the order SQS promises holds whether they are compared as numbers or (same length) as text."""
    return str(SEQUENCE_BASE + counter * SEQUENCE_STEP)


class QueueError(ProtocolError):
    """A request SQS would refuse; `code` is SQS's error code."""


@dataclass(frozen=True)
class Message:
    message_id: str
    queue: str
    body: bytes
    attributes: dict[str, Any]  #: message attributes: {"Name": {"DataType": ..., "StringValue": ...}}
    sent_at: float
    receive_count: int
    first_receive_at: float | None
    group_id: str | None = None
    dedup_id: str | None = None
    sequence: int | None = None
    receipt: str | None = None
    row: int = 0  #: the store's row id: updates find the message by it without a message-id index
    #: The attributes SQS sets itself beyond the computed ones (name -> value), from `system_attributes`.
    system: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: tuple) -> Message:
        return cls(row[0], row[1], bytes(row[2]), json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], row[9],
                   row[10], row[11], _system(row[12]))

    @property
    def md5_of_body(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    def system_attributes(self) -> dict[str, str]:
        """SQS's attributes of the message, as ReceiveMessage and Lambda's records carry them."""
        attrs = {
            "ApproximateReceiveCount": str(self.receive_count),
            "SentTimestamp": str(int(self.sent_at * 1000)),
            "SenderId": SENDER_ID,
            "ApproximateFirstReceiveTimestamp": str(int((self.first_receive_at or self.sent_at) * 1000)),
        }
        if self.group_id is not None:
            attrs["SequenceNumber"] = sequence_number(self.sequence or 0)
            attrs["MessageGroupId"] = self.group_id
            attrs["MessageDeduplicationId"] = self.dedup_id or ""
        if DLQ_SOURCE_ARN in self.system:
            attrs[DLQ_SOURCE_ARN] = self.system[DLQ_SOURCE_ARN]
        if self.trace_header is not None:
            attrs[TRACE_HEADER] = self.trace_header
        return attrs

    @property
    def trace_header(self) -> str | None:
        """The X-Ray header the sender gave (`AWSTraceHeader`), if any."""
        value = self.system.get(TRACE_HEADER)
        return value if isinstance(value, str) else None


def _system(text: str | None) -> dict[str, str]:
    """The stored system attributes; a damaged column reads as none rather than failing a receive."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Sent:
    message_id: str
    sequence: int | None
    duplicate: bool = False  #: a FIFO send whose deduplication id was seen in the last five minutes

    @property
    def sequence_number(self) -> str | None:
        """SendMessage's `SequenceNumber` (FIFO queues only)."""
        return None if self.sequence is None else sequence_number(self.sequence)


_COLUMNS = ("message_id, queue, body, attributes, sent_at, receive_count, first_receive_at, group_id, dedup_id, "
            "sequence, receipt, id, system_attributes")


def send(
    tx: sqlite3.Connection,
    queue: Queue | str,
    body: bytes,
    now: float,
    attributes: dict[str, Any] | None = None,
    delay_s: float | None = None,
    group: str | None = None,
    dedup_id: str | None = None,
    trace_header: str | None = None,
) -> Sent:
    """SendMessage. A bare queue name stands for a standard queue with default settings (what
    dead-letter and destination targets need). `trace_header` is the message's AWSTraceHeader.

    Raises:
        QueueError: a FIFO send without a group (or a deduplication id on a queue without
            content-based deduplication), a per-message delay on a FIFO queue, a delay out of range.
    """
    q = queue if isinstance(queue, Queue) else Queue(queue)
    if q.fifo:
        if not group:
            raise QueueError("MissingParameter", "The request must contain the parameter MessageGroupId.")
        if delay_s:
            raise QueueError("InvalidParameterValue", "Value " + f"{delay_s:g}" + " for parameter DelaySeconds is "
                             "invalid. Reason: The request include parameter that is not valid for this queue type.")
        if dedup_id is None:
            if not q.content_based_deduplication:
                raise QueueError("InvalidParameterValue", "The queue should either have ContentBasedDeduplication "
                                 "enabled or MessageDeduplicationId provided explicitly")
            dedup_id = hashlib.sha256(body).hexdigest()
        earlier = tx.execute(
            "SELECT message_id, sequence FROM dedup WHERE queue = ? AND dedup_id = ? AND expires_at > ?",
            (q.name, dedup_id, now),
        ).fetchone()
        if earlier:
            return Sent(earlier[0], earlier[1], duplicate=True)
    elif group is not None:
        group = None  # standard queues ignore it (SQS accepts it for fair queues)
    delay = q.delay_s if delay_s is None else delay_s
    if not 0 <= delay <= MAX_DELAY_S:
        raise QueueError("InvalidParameterValue", f"Value {delay:g} for parameter DelaySeconds is invalid. Reason: "
                         "must be between 0 and 900, if provided.")
    message_id = new_request_id()
    sequence = _next_sequence(tx, q.name) if q.fifo else None
    system = {TRACE_HEADER: trace_header} if trace_header else {}
    tx.execute(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at, group_id, dedup_id, sequence, "
        "system_attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, q.name, body, json.dumps(attributes or {}), now, now + delay, group,
         dedup_id if q.fifo else None, sequence, json.dumps(system)),
    )
    if q.fifo:
        tx.execute("INSERT OR REPLACE INTO dedup (queue, dedup_id, message_id, sequence, expires_at) "
                   "VALUES (?, ?, ?, ?, ?)", (q.name, dedup_id, message_id, sequence, now + DEDUP_WINDOW_S))
    return Sent(message_id, sequence)


def _next_sequence(tx: sqlite3.Connection, queue: str) -> int:
    tx.execute("INSERT INTO queue_sequences (queue, last) VALUES (?, 1) "
               "ON CONFLICT (queue) DO UPDATE SET last = last + 1", (queue,))
    return int(tx.execute("SELECT last FROM queue_sequences WHERE queue = ?", (queue,)).fetchone()[0])


def receive(
    tx: sqlite3.Connection,
    queue: Queue,
    now: float,
    limit: int,
    visibility_s: float | None = None,
    dead_letter_queue: Queue | None = None,
    max_bytes: int | None = None,
    per_message: int = 0,
    source_arn: str | None = None,
) -> list[Message]:
    """ReceiveMessage: up to `limit` messages (within `max_bytes`, each counted as twice its body,
    for JSON escaping, plus `per_message`) become invisible
    for the visibility timeout, each receive counted. A message already received
    `max_receive_count` times goes to the dead-letter queue instead; one older than the retention
    is left out (and dropped by `expire`). A FIFO queue hands out each group's messages in order,
    and none of a group while any of its messages is in flight. A message moved to the dead-letter
    queue carries `source_arn` (the queue's ARN) as its `DeadLetterQueueSourceArn`."""
    visibility = queue.visibility_timeout_s if visibility_s is None else visibility_s
    max_receives = queue.redrive_max_receive_count if dead_letter_queue is not None else None
    oldest = now - queue.message_retention_s
    taken: list[Message] = []
    size = 0
    candidates = (_fifo_candidates(tx, queue.name, now, oldest, limit * 2 + 16) if queue.fifo
                  else _standard_candidates(tx, queue.name, now, oldest, limit * 2 + 16))
    for message in candidates:
        if len(taken) >= limit:
            break
        if max_receives is not None and message.receive_count >= max_receives:
            assert dead_letter_queue is not None
            _move(tx, message, dead_letter_queue, now, source_arn)
            continue
        cost = 2 * len(message.body) + per_message
        if max_bytes is not None and taken and size + cost > max_bytes:
            break  # left as it is: not received, not counted
        size += cost
        receipt = new_receipt()
        tx.execute(
            "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1, "
            "first_receive_at = COALESCE(first_receive_at, ?), receipt = ? WHERE id = ?",
            (now + visibility, now, receipt, message.row),
        )
        taken.append(replace(message, receive_count=message.receive_count + 1,
                             first_receive_at=message.first_receive_at or now, receipt=receipt))
    return taken


def _standard_candidates(tx: sqlite3.Connection, queue: str, now: float, oldest: float, n: int) -> list[Message]:
    """The oldest visible messages (a few more than asked for, in case some go to the dead-letter queue)."""
    # By the time they became visible (SQS promises no order here): the index gives them in that order.
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND visible_at <= ? AND sent_at > ? "
                      "ORDER BY visible_at, id LIMIT ?", (queue, now, oldest, n)).fetchall()
    return [Message.from_row(r) for r in rows]


def _fifo_candidates(tx: sqlite3.Connection, queue: str, now: float, oldest: float, n: int) -> list[Message]:
    """The messages of groups with none in flight, group by group (oldest group first), each in order."""
    held = {g for g, in tx.execute("SELECT DISTINCT group_id FROM messages WHERE queue = ? AND visible_at > ?",
                                   (queue, now))}  # (the visibility index finds the few in flight)
    heads = tx.execute("SELECT group_id, MIN(id) AS head FROM messages WHERE queue = ? AND group_id IS NOT NULL "
                       "GROUP BY group_id ORDER BY head", (queue,)).fetchall()  # (the group index covers it)
    groups = [g for g, _ in heads if g not in held][:n]
    out: list[Message] = []
    for group in groups:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND group_id = ? AND sent_at > ? "
                          "ORDER BY id LIMIT ?", (queue, group, oldest, n - len(out))).fetchall()
        out += [Message.from_row(r) for r in rows]
        if len(out) >= n:
            break
    return out


def dead_letter(tx: sqlite3.Connection, message: Message, dead_letter_queue: Queue, now: float,
                source_arn: str | None) -> None:
    """Move a received message to its queue's dead-letter queue now, as its redrive would (a mapping
    stopped it as a recursive loop)."""
    _move(tx, message, dead_letter_queue, now, source_arn)


def _move(tx: sqlite3.Connection, message: Message, dead_letter_queue: Queue, now: float,
          source_arn: str | None) -> None:
    """Redrive: the message moves with its id, body, attributes and original send time, to the end
    of the dead-letter queue, marked with the queue it came from (the last one, if it moves again).
    Into a FIFO dead-letter queue its deduplication id becomes its message id, as SQS does it (two
    messages that shared a deduplication id are still two there)."""
    sequence = _next_sequence(tx, dead_letter_queue.name) if dead_letter_queue.fifo else None
    system = dict(message.system)
    if source_arn:
        system[DLQ_SOURCE_ARN] = source_arn
    tx.execute(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at, group_id, dedup_id, sequence, "
        "system_attributes) SELECT message_id, ?, body, attributes, sent_at, ?, group_id, "
        "CASE WHEN ? THEN message_id ELSE dedup_id END, ?, ? FROM messages WHERE id = ?",
        (dead_letter_queue.name, now, dead_letter_queue.fifo, sequence, json.dumps(system), message.row),
    )
    tx.execute("DELETE FROM messages WHERE id = ?", (message.row,))


def expire(tx: sqlite3.Connection, queue: Queue, now: float) -> int:
    """Drop messages older than the queue's retention period, and deduplication ids past their window
    (receives already leave expired messages out: this only reclaims the space)."""
    tx.execute("DELETE FROM dedup WHERE queue = ? AND expires_at <= ?", (queue.name, now))
    return tx.execute("DELETE FROM messages WHERE queue = ? AND sent_at <= ?",
                      (queue.name, now - queue.message_retention_s)).rowcount


#: Random bytes in a receipt handle (shown as base64, 32 characters).
RECEIPT_BYTES = 24


def new_receipt() -> str:
    return base64.b64encode(os.urandom(RECEIPT_BYTES)).decode()


def is_receipt(text: str) -> bool:
    """Whether `text` has the shape of a handle this store gives out. SQS refuses a handle it never
    issued (`ReceiptHandleIsInvalid`) but accepts a stale one, which then deletes nothing."""
    try:
        return len(text) == 32 and len(base64.b64decode(text, validate=True)) == RECEIPT_BYTES
    except ValueError:
        return False


def delete(tx: sqlite3.Connection, queue: str, receipt: str) -> bool:
    """DeleteMessage by receipt handle; False if no message has that handle (any more)."""
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


def change_visibility(tx: sqlite3.Connection, queue: str, receipt: str, timeout_s: float, now: float) -> None:
    """ChangeMessageVisibility of a received message: visible again after `timeout_s` from now.

    Raises:
        QueueError: no in-flight message has that receipt handle, or the timeout is out of range.
    """
    if not 0 <= timeout_s <= MAX_VISIBILITY_S:
        raise QueueError("InvalidParameterValue", f"Value {timeout_s:g} for parameter VisibilityTimeout is invalid. "
                         "Reason: must be between 0 and 43200.")
    # (`+visible_at`: find it by its receipt's index, not by scanning the queue's messages in flight)
    cur = tx.execute("UPDATE messages SET visible_at = ? WHERE queue = ? AND receipt = ? AND +visible_at > ?",
                     (now + timeout_s, queue, receipt, now))
    if cur.rowcount != 1:
        raise QueueError("MessageNotInflight", "The message referred to is not in flight.")


def peek(tx: sqlite3.Connection, queue: str, limit: int) -> list[Message]:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM messages WHERE queue = ? ORDER BY id LIMIT ?", (queue, limit))
    return [Message.from_row(r) for r in rows]


def purge(tx: sqlite3.Connection, queue: str) -> int:
    return tx.execute("DELETE FROM messages WHERE queue = ?", (queue,)).rowcount


def visible_count(tx: sqlite3.Connection, queue: Queue, now: float, cap: int) -> int:
    """How many messages could be received now, counting to `cap` at most (cheap on a long queue;
    on a FIFO queue, only those of groups with nothing in flight)."""
    if queue.fifo:
        return len(_fifo_candidates(tx, queue.name, now, now - queue.message_retention_s, cap))
    return tx.execute("SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ? "
                      "AND sent_at > ? LIMIT ?)", (queue.name, now, now - queue.message_retention_s, cap)).fetchone()[0]


def next_visible(tx: sqlite3.Connection, queue: str) -> float | None:
    """When the next message of `queue` becomes visible (for pollers that sleep until then)."""
    return tx.execute("SELECT MIN(visible_at) FROM messages WHERE queue = ?", (queue,)).fetchone()[0]


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
