"""The one sender of destination records and dead letters, whichever source produced them.

Everything is sent inside the caller's transaction, the one that records the outcome, so that a
crash never loses a record nor sends one twice: to a queue (a message), a function (an async
event), a bucket or a folder (a row in the outbox, written once committed). A new kind of target
is one more branch in `send`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lambdad.clock import iso_millis
from lambdad.manifest.model import Manifest, Queue, Target, TargetKind
from lambdad.payloads.destinations import message_file
from lambdad.services import sqs_rules
from lambdad.services.asyncinvoke import queue_event
from lambdad.store import outbox

#: Lambda cuts a loop of functions invoking each other (here: through destinations) after 16 hops.
MAX_HOPS = 16


@dataclass(frozen=True)
class Delivered:
    label: str  #: "queue:NAME", "function:NAME", "bucket:NAME" or "folder:PATH"
    message_id: str | None = None  #: the message, when sent to a queue
    wakes: str = ""  #: who acts on it once committed: "files" (the outbox), "events" (the dispatcher)


class Deliverer:
    def __init__(self, manifest: Manifest, on_files: Callable[[], None] = lambda: None,
                 on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.manifest = manifest
        self._on_files = on_files
        self._on_enqueued = on_enqueued
        #: Every bucket's folder, including buckets a reload removed: an invocation that started
        #: before the reload delivers its dead letter or record where its configuration said.
        self._bucket_paths = {n: str(b.path) for n, b in manifest.buckets.items()}
        self._lock = threading.Lock()

    def apply(self, manifest: Manifest) -> None:
        with self._lock:
            self.manifest = manifest
            self._bucket_paths |= {n: str(b.path) for n, b in manifest.buckets.items()}

    def send(self, tx: sqlite3.Connection, target: Target, body: bytes, now: float, *, function: str, key: str = "",
             attributes: dict[str, Any] | None = None, trace: str | None = None, hops: int = 0) -> Delivered | None:
        """Send `body` to `target` in `tx`. `function` is the sender, `key` the file's path in a folder,
        `attributes` a dead letter's message attributes (in a folder: a file with the message's shape),
        `trace` the trace header the record continues, `hops` its place in a chain of destinations.
        None: not sent, a function destination past `MAX_HOPS`."""
        if target.kind is TargetKind.queue:  # (its AWSTraceHeader: a function the queue triggers continues the chain)
            sent = sqs_rules.send(tx, self._queue(target.name), body, now, attributes, trace_header=trace)
            return Delivered(f"queue:{target.name}", sent.message_id)
        if target.kind is TargetKind.function:
            if hops >= MAX_HOPS:
                return None
            queue_event(tx, target.name, body, now, "destination", trace=trace, hops=hops)
            return Delivered(f"function:{target.name}", wakes="events")
        folder, label = self._folder_of(target)
        outbox.add(tx, folder, key, body if attributes is None else message_file(body, attributes), function, now)
        return Delivered(label, wakes="files")

    def dead_letter(self, tx: sqlite3.Connection, target: Target, payload: bytes, attributes: dict[str, Any],
                    now: float, *, function: str, request_id: str) -> Delivered | None:
        """The original event with Lambda's dead-letter attributes (in a bucket under `dead-letters/FUNCTION/`)."""
        key = f"{iso_millis(now).replace(':', '.')}-{request_id}.json"
        if target.kind is TargetKind.bucket:
            key = f"dead-letters/{function}/{key}"
        return self.send(tx, target, payload, now, function=function, key=key, attributes=attributes)

    def committed(self, delivered: Iterable[Delivered | None]) -> None:
        """After the caller's commit of what `send` returned: wake whoever writes its files and runs
        its events. (Told per commit, not remembered here: another thread's commit must not announce
        a file whose transaction has not committed yet.)"""
        wakes = {d.wakes for d in delivered if d is not None}
        if "files" in wakes:
            self._on_files()
        if "events" in wakes:
            self._on_enqueued()

    def _queue(self, name: str) -> Queue | str:
        """The queue's settings (its delay applies), or just its name if a reload removed it."""
        return self.manifest.queues.get(name) or name

    def _folder_of(self, target: Target) -> tuple[str, str]:
        if target.kind is TargetKind.bucket:
            with self._lock:
                return self._bucket_paths[target.name], f"bucket:{target.name}"
        return target.name, f"folder:{target.name}"
