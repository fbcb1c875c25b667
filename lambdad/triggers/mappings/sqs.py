"""SQS event source mappings: poll local queues and invoke functions synchronously with batches.

As Lambda's mapping does: a received batch stays in the queue, invisible; a successful invocation
deletes it; a failed one leaves it to reappear after the visibility timeout (so the queue's
redrive policy, not the mapping, decides when a message is given up). With
`report_batch_item_failures` only the listed messages stay. The poller only receives a batch when
the function has a free slot, so a busy function makes messages wait rather than fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from lambdad.backoff import backoff
from lambdad.clock import Clock
from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.health import Health
from lambdad.manifest.model import Function, Manifest, Queue, RecursiveLoop, SqsTrigger
from lambdad.payloads.sqs import BatchFailure, failed_items, sqs_event
from lambdad.payloads.sqs_messages import deliverable_attributes
from lambdad.runtime.functions import Functions, ShuttingDown
from lambdad.runtime.invocation import InvokeResult, Outcome
from lambdad.services.queues import Queues
from lambdad.sqs_vocabulary import Message
from lambdad.tasks import submit as submit_task
from lambdad.tracing import MAX_CHAIN, continues_loop, for_batch
from lambdad.triggers.mappings.poller import POLL_S, Poller

log = logging.getLogger(__name__)

#: A batch is at most 6 MB, Lambda's synchronous payload limit.
MAX_BATCH_BYTES = 6 * 1024 * 1024 - 64 * 1024
#: After a batch could not be delivered, the mapping waits this long before it receives again.
PAUSE_S = 1.0

#: What a record adds to its message's body in the event (ids, receipt handle, attributes, ARN).
RECORD_BYTES = 1024


#: A throttled batch is invoked again after 10 ms, 20 ms, ... at most 1 s apart.
THROTTLED_FIRST_WAIT_S = 0.01
THROTTLED_MAX_WAIT_S = 1.0


@dataclass(frozen=True)
class Mapping:
    function: str
    trigger: SqsTrigger

    @property
    def key(self) -> tuple[str, str]:
        return self.function, self.trigger.queue


@dataclass
class _State:
    running: int = 0  #: batches in flight
    waiting_since: float | None = None  #: when messages were first seen, for the batching window
    paused_until: float = 0.0  #: after a batch could not be delivered (throttled, stopping)


def manifest_mappings(manifest: Manifest) -> dict[Hashable, Mapping]:
    found = {}
    for fn in manifest.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, SqsTrigger) and trigger.enabled:
                mapping = Mapping(fn.name, trigger)
                found[mapping.key] = mapping
    return found


def batch_visibility(queue: Queue, fn: Function, trigger: SqsTrigger) -> float:
    """Lambda stretches the visibility timeout when window + function timeout would outlast it."""
    needed = trigger.maximum_batching_window_s + fn.timeout_s
    return needed + 30 if needed > queue.visibility_timeout_s else queue.visibility_timeout_s


class SqsPoller(Poller):
    name = "sqs"
    min_wait_s = 0.005

    def __init__(
        self,
        manifest: Manifest,
        queues: Queues,
        functions: Functions,
        clock: Clock,
        executor: Executor | None = None,
        health: Health | None = None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        # Batches in flight are bounded by the functions' concurrency; a throttle retry holds a thread.
        super().__init__(manifest, functions, clock, executor, threads=max(4, 2 * manifest.concurrency),
                         health=health)
        self.queues = queues  #: every read and write of the queues goes through it
        self._states: dict[tuple[str, str], _State] = {}
        self._noted: set[str] = set()  #: messages whose undeliverable attributes were noted
        self._last_errors: dict[str, dict[str, object]] = {}
        self._on_error = on_error  #: a mapping's last error changed: `lambdad status` shows it (daemon.json)

    def last_errors(self) -> dict[str, dict[str, object]]:
        """Each mapping's (`FUNCTION/QUEUE`) last failed batch: `error` and when (`at`, wall clock)."""
        with self._lock:
            return {key: dict(e) for key, e in self._last_errors.items()}

    def _failed(self, function: str, queue: Queue, message: str) -> None:
        """Say why a batch failed in the function's log, and keep it as the mapping's last error."""
        self._note(function, f"sqs {queue.name}: {message}")
        with self._lock:
            key = f"{function}/{queue.name}"
            changed = self._last_errors.get(key, {}).get("error") != message
            self._last_errors[key] = {"error": message, "at": self.clock.time()}
        if changed:  # (the same error again only moves `at`: written with the next daemon.json)
            self._on_error()

    manifest_mappings = staticmethod(manifest_mappings)

    # -- one round ------------------------------------------------------------------------------------

    def _expire(self, manifest: Manifest, now: float) -> None:
        """Reclaim expired messages and deduplication ids (receives already leave them out)."""
        self.queues.expire(manifest.queues.values())

    def _poll(self, manifest: Manifest, mapping: Mapping, now: float) -> float:
        fn = manifest.functions.get(mapping.function)
        queue = manifest.queues.get(mapping.trigger.queue)
        if fn is None or queue is None:
            return POLL_S
        state = self._states.setdefault(mapping.key, _State())
        trigger = mapping.trigger
        while state.running < self._concurrency(mapping, fn):
            if now < state.paused_until:
                return state.paused_until - now
            available = self.queues.visible_count(queue, trigger.batch_size)
            if not available:
                state.waiting_since = None
                return POLL_S
            if trigger.maximum_batching_window_s and available < trigger.batch_size:
                state.waiting_since = state.waiting_since or now
                due = state.waiting_since + trigger.maximum_batching_window_s
                if now < due:
                    return due - now
            state.waiting_since = None
            visibility = batch_visibility(queue, fn, trigger)
            batch = self.queues.receive(queue, trigger.batch_size, visibility, MAX_BATCH_BYTES, RECORD_BYTES)
            if not batch:
                return POLL_S
            # Past this, the batch has less room than a whole invocation: `_deliver` holds it first.
            deadline_mono = self.clock.monotonic() + visibility - fn.timeout_s
            with self._lock:
                state.running += 1
            if not submit_task(self._executor, self._deliver, manifest, mapping, fn, queue, batch, state, deadline_mono,
                               what=f"a batch of {len(batch)} from {queue.name} to {fn.name}",
                               release=partial(self._put_back, queue, batch, state)):
                with self._lock:  # stopping: the executor takes no more work (the batch is put back)
                    state.running -= 1
                return POLL_S
        return POLL_S

    def _put_back(self, queue: Queue, batch: list[Message], state: _State) -> None:
        """A batch's task failed (logged) or never ran: its messages are visible again, and the mapping
        pauses a moment (a bug that always raises must not spin)."""
        state.paused_until = self.clock.time() + PAUSE_S
        self._release(queue, batch)
        self.wake()

    def _concurrency(self, mapping: Mapping, fn: Function) -> int:
        """Batches in flight at once: the mapping's maximum, within the function's concurrency (0
        with `reserved_concurrency: 0`: the mapping does not poll)."""
        capacity = self.functions.pool(fn.name).limiter.capacity
        return min(mapping.trigger.maximum_concurrency or capacity, capacity)

    def _release(self, queue: Queue, batch: list[Message]) -> None:
        """Messages the function never saw are visible again at once."""
        self.queues.set_visibility(queue, batch, 0)

    # -- one batch ------------------------------------------------------------------------------------

    def _deliver(self, manifest: Manifest, mapping: Mapping, fn: Function, queue: Queue,
                 batch: list[Message], state: _State, deadline_mono: float) -> None:
        try:
            if self.clock.monotonic() > deadline_mono:  # waited for a thread: less room left than a whole invocation
                batch = self._hold(queue, batch, fn.timeout_s)
                if not batch:  # visible again already: they may be someone else's now
                    self._failed(fn.name, queue, "a batch waited past its visibility timeout; not delivered (its "
                                                 "messages return)")
                    return
                deadline_mono = self.clock.monotonic()
            batch = self._stop_loops(manifest, fn, queue, batch)
            if not batch:
                return
            self._note_undeliverable(fn.name, queue, batch)
            payload = sqs_event(batch, self.queues.arn(queue.name), manifest.region)
            trace = for_batch([m.trace_header for m in batch], fn.name, self.clock.time())
            try:
                result = self._invoke(fn, payload, deadline_mono, trace)
            except (TooManyRequests, ShuttingDown, FunctionNotFound) as e:
                self._failed(fn.name, queue, f"batch of {len(batch)} not delivered ({type(e).__name__}); its "
                                             "messages are visible again")
                state.paused_until = self.clock.time() + PAUSE_S
                self._release(queue, batch)
                return
            keep = self._judge(mapping, queue, batch, result, fn.name)
            done = [m for m in batch if m not in keep]
            if done:
                self.queues.delete_batch(queue, [m.receipt for m in done if m.receipt])
        finally:  # (what raised is logged, and the batch put back, by `submit_task`)
            with self._lock:
                state.running -= 1
            self.wake()

    def _hold(self, queue: Queue, batch: list[Message], timeout_s: float) -> list[Message]:
        """The messages of the batch still in flight with its receipts, now invisible for a whole
        invocation (`timeout_s`) from now: a batch that waited for a thread runs only on messages
        that are still its own, and they stay its own while it runs. With a visibility timeout
        equal to the function's timeout (which Lambda allows) every batch needs this."""
        return self.queues.set_visibility(queue, batch, timeout_s)

    def _stop_loops(self, manifest: Manifest, fn: Function, queue: Queue,
                    batch: list[Message]) -> list[Message]:
        """The batch without the messages whose invocation would be the function's 17th in their chain
        of events: those go to the queue's dead-letter queue at once (redrive policy), or are dropped
        without one, as Lambda's loop detection does; one line in the function's log says so."""
        if fn.recursive_loop is RecursiveLoop.allow:
            return batch
        looping = [m for m in batch if continues_loop(m.trace_header, fn.name)]
        if not looping:
            return batch
        dlq = self.queues.dead_letter(queue, looping)
        fate = f"moved to {dlq.name}" if dlq is not None else "dropped (the queue has no dead-letter queue)"
        self._note(fn.name, f"sqs {queue.name}: stopped a recursive loop: {len(looping)} message(s) would invoke the "
                            f"function more than {MAX_CHAIN} times in one chain of events; {fate} "
                            "(`recursive_loop: allow` lets them run)")
        return [m for m in batch if m not in looping]

    def _note_undeliverable(self, function: str, queue: Queue, batch: list[Message]) -> None:
        """Say once per message which attributes its event leaves out (a store written before sends
        were checked can hold attributes no event can carry; the message itself is delivered)."""
        for m in batch:
            bad = deliverable_attributes(m.attributes)[1]
            if bad and m.message_id not in self._noted:
                if len(self._noted) >= 10_000:
                    self._noted.clear()
                self._noted.add(m.message_id)
                self._note(function, f"sqs {queue.name}: message {m.message_id}: attribute(s) {', '.join(bad)} "
                                     "are not valid SQS message attributes; left out of the event")

    def _invoke(self, fn: Function, payload: bytes, give_up_mono: float, trace: str | None = None) -> InvokeResult:
        """Invoke; a throttle (a synchronous call took the slot) is retried with backoff while the
        batch's visibility timeout still leaves room for a whole invocation, as Lambda's poller does."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.functions.invoke(fn.name, payload, trace_id=trace)
            except TooManyRequests:
                wait = backoff(attempt, THROTTLED_FIRST_WAIT_S, THROTTLED_MAX_WAIT_S)
                if self._stop.is_set() or self.clock.monotonic() + wait >= give_up_mono:
                    raise
                self._stop.wait(wait)

    def _judge(self, mapping: Mapping, queue: Queue, batch: list[Message], result: InvokeResult,
               function: str) -> list[Message]:
        """The messages that stay in the queue (to reappear after the visibility timeout)."""
        if result.outcome is not Outcome.success:
            self._failed(function, queue, f"batch of {len(batch)} failed ({result.error_type}); its messages "
                                          "return after the visibility timeout")
            return batch
        if not mapping.trigger.report_batch_item_failures:
            return []
        try:
            failed = failed_items(result.payload, batch, queue.fifo)
        except BatchFailure as e:
            self._failed(function, queue, f"the whole batch of {len(batch)} returns: {e}")
            return batch
        if failed:
            self._failed(function, queue, f"{len(failed)} of {len(batch)} message(s) reported as failed return "
                                          "after the visibility timeout")
        return failed

