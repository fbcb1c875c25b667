"""What an async event's final outcome commits, in the one transaction that removes the event:
its statistics, its dead letter (kept for `lambdad dlq` whatever the target), and its destination
record. The dispatcher decides when (`outcomes.retry`) and commits; this says what.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable

from lambdad.manifest.model import DEFAULT_MAX_EVENT_AGE_S, Function, Manifest, Target
from lambdad.outcomes.deliver import MAX_HOPS, Delivered, Deliverer
from lambdad.payloads.destinations import Condition, dead_letter_attributes, invocation_record, object_key
from lambdad.runtime.invocation import InvokeResult
from lambdad.store import deadletters, invocations
from lambdad.store.deadletters import DeadLetter
from lambdad.store.invocations import QueuedEvent

#: The error a dead letter of an event stopped as a recursive loop carries (the SDKs' words for it).
RECURSIVE_LOOP_ERROR = json.dumps({
    "errorType": "RecursiveInvocationException",
    "errorMessage": "Lambda has detected your function being invoked in a recursive loop with other AWS resources "
                    "and stopped your function's invocation."}).encode()

#: A line in the function's log about an event's fate: (function, event, message, now).
Note = Callable[[Function, QueuedEvent, str, float], None]


class AsyncOutcomes:
    def __init__(self, manifest: Manifest, deliverer: Deliverer, note: Note) -> None:
        self.manifest = manifest
        self.deliverer = deliverer
        self._note = note

    def apply(self, manifest: Manifest) -> None:
        self.manifest = manifest

    def succeed(self, tx: sqlite3.Connection, fn: Function, ev: QueuedEvent, result: InvokeResult,
                now: float) -> list[Delivered | None]:
        """Returns what was delivered, for `Deliverer.committed` once the transaction commits."""
        invocations.delete(tx, ev.id)
        invocations.bump_stats(tx, fn.name, succeeded=True)
        if not fn.async_config.on_success:
            return []
        record = self._record(fn, ev, Condition.success, ev.invocations + 1, result.payload, None, now)
        return [self._destination(tx, fn, ev, fn.async_config.on_success, record, now)]

    def fail(self, tx: sqlite3.Connection, fn: Function, ev: QueuedEvent, condition: Condition,
             response: bytes | None, now: float) -> list[Delivered | None]:
        """Final failure: dead letter (kept for `lambdad dlq` whatever the target), on_failure record.
        Returns what was delivered, for `Deliverer.committed` once the transaction commits."""
        cfg = fn.async_config
        invocations.delete(tx, ev.id)
        invocations.bump_stats(tx, fn.name, succeeded=False)
        error_type, error_message = _error_of(response, condition)
        error_code = "200" if ev.invocations else "429"
        target, message_id = "", None
        delivered: list[Delivered | None] = []
        if cfg.dead_letter:
            attributes = dead_letter_attributes(ev.request_id, error_code, error_message)
            sent = self.deliverer.dead_letter(tx, cfg.dead_letter, ev.payload, attributes, now, function=fn.name,
                                              request_id=ev.request_id)
            delivered.append(sent)
            if sent is not None:
                target, message_id = sent.label, sent.message_id
        deadletters.add(tx, DeadLetter(0, ev.request_id, fn.name, ev.payload, condition.value, ev.invocations,
                                       error_type, error_message, response, target, message_id, ev.enqueued_at, now))
        if cfg.on_failure:
            record = self._record(fn, ev, condition, ev.invocations, response, "Unhandled", now)
            delivered.append(self._destination(tx, fn, ev, cfg.on_failure, record, now))
        where = f" -> {target}" if target else ""
        self._note(fn, ev, f"failed for good: {condition.value} after {ev.invocations} invocation(s){where}", now)
        return delivered

    def expire_orphans(self, tx: sqlite3.Connection, now: float) -> None:
        """Events of a function no longer in the manifest wait (it may come back) until Lambda's
        longest event age has passed; then they become dead letters (EventAgeExceeded)."""
        for ev in invocations.orphans(tx, list(self.manifest.functions), now - DEFAULT_MAX_EVENT_AGE_S):
            invocations.delete(tx, ev.id)
            deadletters.add(tx, DeadLetter(0, ev.request_id, ev.function, ev.payload,
                                           Condition.event_age_exceeded.value, ev.invocations, ev.last_error,
                                           "the function was removed from the manifest", ev.last_response, "",
                                           None, ev.enqueued_at, now))

    def _record(self, fn: Function, ev: QueuedEvent, condition: Condition, invoke_count: int,
                response: bytes | None, function_error: str | None, now: float) -> bytes:
        record = invocation_record(
            request_id=ev.request_id,
            function_arn=self.manifest.function_arn(fn.name, "$LATEST"),
            condition=condition,
            invoke_count=invoke_count,
            request_payload=ev.payload,
            response_payload=response,
            function_error=function_error,
            now=now,
        )
        return json.dumps(record).encode()

    def _destination(self, tx: sqlite3.Connection, fn: Function, ev: QueuedEvent, target: Target, record: bytes,
                     now: float) -> Delivered | None:
        sent = self.deliverer.send(tx, target, record, now, function=fn.name,
                                   key=object_key(fn.name, now, str(uuid.uuid4())), trace=ev.trace, hops=ev.hops + 1)
        if sent is None:
            self._note(fn, ev, f"not invoking destination {target.name!r}: the chain of destinations is "
                               f"{MAX_HOPS} long (Lambda stops recursive loops there)", now)
        return sent


def _error_of(response: bytes | None, condition: Condition) -> tuple[str | None, str]:
    if response:
        try:
            doc = json.loads(response)
            return doc.get("errorType"), str(doc.get("errorMessage", ""))
        except (ValueError, AttributeError):
            pass
    if condition is Condition.zero_reserved_concurrency or condition is Condition.event_age_exceeded:
        return None, "Rate Exceeded." if condition is Condition.zero_reserved_concurrency else "Event age exceeded"
    return None, ""
