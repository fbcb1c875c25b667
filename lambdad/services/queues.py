"""The local queues, as every face sees them: the SQS APIs (JSON and query), `lambdad queue ...`,
`lambdad status` and the SQS event source mappings all call this one service, so a message is
checked the same way whoever sends it, every operation reads one clock and runs in one store
transaction, and a send wakes the pollers (`on_sent`).

The rules themselves are `sqs_rules`' (over a transaction) and `events.sqs_messages`' (pure checks
of a message); this class adds the manifest (which queues exist, their dead-letter queues and ARNs),
the clock and the transactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lambdad.clock import Clock
from lambdad.manifest.model import Manifest, Queue
from lambdad.payloads.sqs import queue_arn
from lambdad.payloads.sqs_messages import Outgoing, outgoing
from lambdad.services import sqs_rules
from lambdad.sqs_vocabulary import Message, QueueDepth, QueueError, Sent
from lambdad.store import queues as rows

if TYPE_CHECKING:
    from lambdad.store import Store


class Queues:
    """SQS's operations over the manifest's queues."""

    def __init__(self, store: Store, clock: Clock, manifest: Manifest,
                 on_sent: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.clock = clock
        self.manifest = manifest
        self._on_sent = on_sent

    def apply(self, manifest: Manifest) -> None:
        """A reload: queues added, removed or changed take effect with the next operation."""
        self.manifest = manifest

    # -- the manifest's queues ------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        """The queue named `name` (the last part of a queue URL).

        Raises:
            QueueError: QueueDoesNotExist.
        """
        queue = self.manifest.queues.get(name)
        if queue is None:
            raise QueueError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    def arn(self, name: str) -> str:
        return queue_arn(self.manifest.region, self.manifest.account, name)

    def dead_letter_queue(self, queue: Queue) -> Queue | None:
        """Where the queue's redrive policy moves a message received too often (None without one)."""
        return self.manifest.queues.get(queue.redrive_dead_letter_queue or "")

    # -- sending --------------------------------------------------------------------------------------

    @staticmethod
    def message(queue: Queue, body: str, attributes: object = None, delay_s: int | None = None,
                group: str | None = None, dedup_id: str | None = None, system_attributes: object = None) -> Outgoing:
        """Every check SendMessage makes of one message before anything is written (the queue's own
        rules, a FIFO queue's group and deduplication and the delay's range, are checked by `send`).

        Raises:
            QueueError: what SQS would answer.
        """
        return outgoing(body, attributes, delay_s, group, dedup_id, queue.fifo, system_attributes)

    def send(self, queue: Queue, message: Outgoing) -> Sent:
        """Commit one message, then wake the pollers (a FIFO duplicate, not sent again, too).

        Raises:
            QueueError: the queue's rules refuse it.
        """
        sent = self.store.write(lambda tx: self._send(tx, queue, message, self.clock.time()))
        self._on_sent()
        return sent

    def send_batch(self, queue: Queue, messages: list[Outgoing]) -> list[Sent | QueueError]:
        """Commit the messages in one transaction, each refused alone by the queue's rules; wake the
        pollers if any was sent. Returns what became of each, in order."""

        def send_all(tx) -> list[Sent | QueueError]:
            now = self.clock.time()
            out: list[Sent | QueueError] = []
            for message in messages:
                try:
                    out.append(self._send(tx, queue, message, now))
                except QueueError as e:
                    out.append(e)
            return out

        results = self.store.write(send_all) if messages else []
        if any(isinstance(r, Sent) for r in results):
            self._on_sent()
        return results

    @staticmethod
    def _send(tx, queue: Queue, m: Outgoing, now: float) -> Sent:
        return sqs_rules.send(tx, queue, m.body, now, m.attributes, m.delay_s, m.group, m.dedup_id, m.trace_header)

    # -- receiving ------------------------------------------------------------------------------------

    def receive(self, queue: Queue, limit: int, visibility_s: float | None = None, max_bytes: int | None = None,
                per_message: int = 0) -> list[Message]:
        """ReceiveMessage (see `sqs_rules.receive`), with the queue's redrive policy applied."""
        dlq, arn = self.dead_letter_queue(queue), self.arn(queue.name)
        return self.store.write(lambda tx: sqs_rules.receive(tx, queue, self.clock.time(), limit, visibility_s, dlq,
                                                             max_bytes, per_message, arn))

    def visible_count(self, queue: Queue, cap: int) -> int:
        """How many messages a receive could take now, counted to `cap` at most."""
        with self.store.reading() as tx:
            return sqs_rules.visible_count(tx, queue, self.clock.time(), cap)

    def change_visibility(self, queue: Queue, receipt: str, timeout_s: float) -> None:
        """Raises:
            QueueError: MessageNotInflight, or the timeout is out of range."""
        self.store.write(lambda tx: sqs_rules.change_visibility(tx, queue.name, receipt, timeout_s,
                                                                self.clock.time()))

    def set_visibility(self, queue: Queue, messages: Iterable[Message], timeout_s: float) -> list[Message]:
        """Make received messages visible `timeout_s` from now (0: at once), in one transaction.
        Returns those still in flight with their receipts (the others are visible again already)."""
        now, batch = self.clock.time(), list(messages)

        def change(tx) -> list[Message]:
            held = []
            for m in batch:
                if m.receipt:
                    with contextlib.suppress(QueueError):  # (MessageNotInflight: visible again)
                        sqs_rules.change_visibility(tx, queue.name, m.receipt, timeout_s, now)
                        held.append(m)
            return held

        return self.store.write(change)

    # -- removing -------------------------------------------------------------------------------------

    def delete(self, queue: Queue, receipt: str) -> bool:
        """DeleteMessage; False if no message has that handle (any more: SQS answers the same)."""
        return self.store.write(lambda tx: rows.delete(tx, queue.name, receipt))

    def delete_batch(self, queue: Queue, receipts: Iterable[str]) -> None:
        """Delete by receipt handles, in one transaction."""
        chosen = list(receipts)
        self.store.write(lambda tx: [rows.delete(tx, queue.name, r) for r in chosen])

    def dead_letter(self, queue: Queue, messages: list[Message]) -> Queue | None:
        """Give up received messages now: to the queue's dead-letter queue, as its redrive would, or
        deleted without one. Returns the dead-letter queue (None: deleted)."""
        dlq, arn = self.dead_letter_queue(queue), self.arn(queue.name)
        now = self.clock.time()

        def give_up(tx) -> None:
            for m in messages:
                if dlq is not None:
                    sqs_rules.dead_letter(tx, m, dlq, now, arn)
                elif m.receipt:
                    rows.delete(tx, queue.name, m.receipt)

        self.store.write(give_up)
        return dlq

    def purge(self, queue: Queue) -> int:
        return self.store.write(lambda tx: rows.purge(tx, queue.name))

    def expire(self, queues: Iterable[Queue]) -> None:
        """Reclaim expired messages and deduplication ids (receives already leave them out)."""
        now, chosen = self.clock.time(), list(queues)
        self.store.write(lambda tx: [sqs_rules.expire(tx, q, now) for q in chosen])

    # -- looking --------------------------------------------------------------------------------------

    def peek(self, queue: Queue, limit: int) -> list[Message]:
        """Messages in the order they were sent, visible or not, without receiving them."""
        with self.store.reading() as tx:
            return rows.peek(tx, queue.name, limit)

    def depths(self) -> dict[str, QueueDepth]:
        """Visible, in-flight and delayed messages per queue (queues without any are left out)."""
        with self.store.reading() as tx:
            return rows.depths(tx, self.clock.time())

    def depth(self, name: str) -> QueueDepth:
        return self.depths().get(name, QueueDepth())
