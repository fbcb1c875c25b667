"""SQS's rules over the store's rows: visibility timeouts, receive counts, redrive to a dead-letter
queue, retention, delays, and for FIFO queues order per message group, groups held while one of
their messages is in flight, and deduplication within five minutes.

Each function works inside the caller's transaction and takes `now`: the rules are time arithmetic
over rows, so the `Queues` service runs them in its own transactions with its clock, and a sender
that must write a message atomically with its own rows (a destination) runs them in its own.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from typing import Any

from lambdad.ids import new_request_id as new_message_id  # (a v4 UUID, as SQS's message ids)
from lambdad.manifest.model import Queue
from lambdad.sqs_vocabulary import (
    DEDUP_WINDOW_S,
    DLQ_SOURCE_ARN,
    MAX_DELAY_S,
    MAX_VISIBILITY_S,
    TRACE_HEADER,
    Message,
    QueueError,
    Sent,
    new_receipt,
)
from lambdad.store import queues as rows


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
        earlier = rows.remembered(tx, q.name, dedup_id, now)
        if earlier:
            return Sent(earlier[0], earlier[1], duplicate=True)
    elif group is not None:
        group = None  # standard queues ignore it (SQS accepts it for fair queues)
    delay = q.delay_s if delay_s is None else delay_s
    if not 0 <= delay <= MAX_DELAY_S:
        raise QueueError("InvalidParameterValue", f"Value {delay:g} for parameter DelaySeconds is invalid. Reason: "
                         "must be between 0 and 900, if provided.")
    message_id = new_message_id()
    sequence = rows.next_sequence(tx, q.name) if q.fifo else None
    system = {TRACE_HEADER: trace_header} if trace_header else {}
    rows.insert(tx, message_id, q.name, body, attributes or {}, now, now + delay, group,
                dedup_id if q.fifo else None, sequence, system)
    if q.fifo:
        assert dedup_id is not None
        rows.remember(tx, q.name, dedup_id, message_id, sequence, now + DEDUP_WINDOW_S)
    return Sent(message_id, sequence)


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
                  else rows.visible(tx, queue.name, now, oldest, limit * 2 + 16))
    # (a few more than asked for, in case some go to the dead-letter queue)
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
        rows.mark_received(tx, message.row, now, now + visibility, receipt)
        taken.append(replace(message, receive_count=message.receive_count + 1,
                             first_receive_at=message.first_receive_at or now, receipt=receipt))
    return taken


def _fifo_candidates(tx: sqlite3.Connection, queue: str, now: float, oldest: float, n: int) -> list[Message]:
    """The messages of groups with none in flight, group by group (oldest group first), each in order."""
    held = rows.groups_in_flight(tx, queue, now)
    groups = [g for g in rows.groups_by_age(tx, queue) if g not in held][:n]
    out: list[Message] = []
    for group in groups:
        out += rows.in_group(tx, queue, group, oldest, n - len(out))
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
    sequence = rows.next_sequence(tx, dead_letter_queue.name) if dead_letter_queue.fifo else None
    system = dict(message.system)
    if source_arn:
        system[DLQ_SOURCE_ARN] = source_arn
    rows.move(tx, message.row, dead_letter_queue.name, now, sequence, system, dead_letter_queue.fifo)


def expire(tx: sqlite3.Connection, queue: Queue, now: float) -> int:
    """Drop messages older than the queue's retention period, and deduplication ids past their window
    (receives already leave expired messages out: this only reclaims the space)."""
    rows.forget_dedup(tx, queue.name, now)
    return rows.delete_sent_before(tx, queue.name, now - queue.message_retention_s)


def change_visibility(tx: sqlite3.Connection, queue: str, receipt: str, timeout_s: float, now: float) -> None:
    """ChangeMessageVisibility of a received message: visible again after `timeout_s` from now.

    Raises:
        QueueError: no in-flight message has that receipt handle, or the timeout is out of range.
    """
    if not 0 <= timeout_s <= MAX_VISIBILITY_S:
        raise QueueError("InvalidParameterValue", f"Value {timeout_s:g} for parameter VisibilityTimeout is invalid. "
                         "Reason: must be between 0 and 43200.")
    if not rows.make_visible_at(tx, queue, receipt, now + timeout_s, now):
        raise QueueError("MessageNotInflight", "The message referred to is not in flight.")


def visible_count(tx: sqlite3.Connection, queue: Queue, now: float, cap: int) -> int:
    """How many messages could be received now, counting to `cap` at most (cheap on a long queue;
    on a FIFO queue, only those of groups with nothing in flight)."""
    oldest = now - queue.message_retention_s
    if queue.fifo:
        return len(_fifo_candidates(tx, queue.name, now, oldest, cap))
    return rows.count_visible(tx, queue.name, now, oldest, cap)
