"""SQS's vocabulary: its limits, the attributes it sets on a message, its error, a message as it is
read back, and the shapes of its ids. Plain values and pure functions at the bottom of the layers,
so the store (rows), the payload builders (`events/sqs.py`) and the queues service share them
without one importing another.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from lambdad.errors import ProtocolError

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
#: Random bytes in a receipt handle (shown as base64, 32 characters).
RECEIPT_BYTES = 24


def sequence_number(counter: int) -> str:
    """The `SequenceNumber` of a FIFO queue's `counter`th message: it grows with the counter, so
    the order SQS promises holds whether they are compared as numbers or (same length) as text."""
    return str(SEQUENCE_BASE + counter * SEQUENCE_STEP)


class QueueError(ProtocolError):
    """A request SQS would refuse; `code` is SQS's error code."""


def new_receipt() -> str:
    return base64.b64encode(os.urandom(RECEIPT_BYTES)).decode()


def is_receipt(text: str) -> bool:
    """Whether `text` has the shape of a handle lambdad gives out. SQS refuses a handle it never
    issued (`ReceiptHandleIsInvalid`) but accepts a stale one, which then deletes nothing."""
    try:
        return len(text) == 32 and len(base64.b64decode(text, validate=True)) == RECEIPT_BYTES
    except ValueError:
        return False


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


@dataclass(frozen=True)
class Sent:
    message_id: str
    sequence: int | None
    duplicate: bool = False  #: a FIFO send whose deduplication id was seen in the last five minutes

    @property
    def sequence_number(self) -> str | None:
        """SendMessage's `SequenceNumber` (FIFO queues only)."""
        return None if self.sequence is None else sequence_number(self.sequence)


@dataclass(frozen=True)
class QueueDepth:
    visible: int = 0
    in_flight: int = 0  #: received, not deleted, still invisible
    delayed: int = 0  #: sent with a delay that has not passed (never received)
