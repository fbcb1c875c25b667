"""Kinesis- and DynamoDB-Streams-style event source mappings over local streams.

Each shard (each lane of it, with a parallelization factor: records are split by partition key, so
a key's records stay in order) has a cursor: its stored position and, while a batch fails, the
batch and what the error handling made of it. As Lambda does it:

- a failed batch is retried, and the lane waits (order is kept), until it succeeds,
  `maximum_retry_attempts` is used up, or its records pass `maximum_record_age` (or expire);
- `bisect_batch_on_function_error` splits a failed batch in two, without counting a retry, until
  the bad record is alone;
- with `report_batch_item_failures`, the records before the lowest reported sequence number are
  done, and processing resumes from it;
- records given up are reported to `on_failure` (metadata, not the records) and the lane moves on.

The position advances in the same transaction that sends an on-failure record, so a restart never
skips a record and never reports one twice; a batch in flight when the daemon dies runs again.

A reload that changes a mapping's layout (its parallelization factor, the stream's shard count, or
the mapping going away and coming back) waits for the mapping's batches in flight, sets their
results aside, and rebuilds the cursors from the stored positions: records may run again, none is
skipped, none reported twice. A shard the stream no longer has is read until it is drained.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Hashable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from lambdad.backoff import backoff as outcomes_backoff
from lambdad.clock import Clock, utc
from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.health import Health
from lambdad.manifest.model import Function, Manifest, Stream, StreamTrigger, Target, TargetKind
from lambdad.outcomes.deliver import Delivered, Deliverer
from lambdad.payloads.sqs import BatchFailure
from lambdad.payloads.streams import first_failure, on_failure_record, stream_event
from lambdad.runtime.functions import Functions, ShuttingDown
from lambdad.runtime.invocation import Outcome
from lambdad.services.streams import StreamRecord, Streams
from lambdad.stream_vocabulary import shard_name
from lambdad.tasks import submit as submit_task
from lambdad.triggers.mappings.poller import POLL_S, Poller

log = logging.getLogger(__name__)

#: Waits before retrying a failed batch: 0.5 s, 1 s, 2 s ... at most this long.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
#: Lambda's limit on a batch's payload.
MAX_BATCH_BYTES = 6 * 1024 * 1024
#: What a record adds to the payload beyond its data (field names, ids, ARNs), a generous guess.
RECORD_OVERHEAD = 600


def fit(batch: list[StreamRecord], stream_format: str) -> list[StreamRecord]:
    """The longest head of `batch` whose event stays within Lambda's 6 MB (at least one record)."""
    size = 0
    for i, record in enumerate(batch):
        size += (len(record.data) * 4 // 3 if stream_format == "kinesis" else len(record.data)) + RECORD_OVERHEAD
        if size > MAX_BATCH_BYTES and i:
            return batch[:i]
    return batch


def mapping_id(function: str, stream: str) -> str:
    return f"{function}/{stream}"


def backoff(retries: int) -> float:
    return outcomes_backoff(retries, FIRST_BACKOFF_S, MAX_BACKOFF_S)


@dataclass
class Cursor:
    """One lane of one shard of one mapping."""

    shard: int
    lane: int
    position: int  #: the last record done
    #: Batches still to run before the position can move past them (a bisected batch's halves),
    #: each with the retries it has used.
    pending: list[tuple[list[StreamRecord], int]] = field(default_factory=list)
    not_before: float = 0.0  #: retry backoff
    waiting_since: float | None = None  #: batching window
    #: With several lanes: no record of this lane lies between `position` and here, so an idle
    #: lane does not scan the other lanes' records on every poll.
    scanned: int = 0

    def key(self) -> tuple[int, int]:
        return self.shard, self.lane


@dataclass(frozen=True)
class StreamMapping:
    function: str
    trigger: StreamTrigger

    @property
    def id(self) -> str:
        return mapping_id(self.function, self.trigger.stream)


def manifest_mappings(manifest: Manifest) -> dict[Hashable, StreamMapping]:
    return {
        m.id: m
        for fn in manifest.functions.values()
        for t in fn.events
        if isinstance(t, StreamTrigger) and t.enabled
        for m in [StreamMapping(fn.name, t)]
    }


class StreamPoller(Poller):
    name = "streams"

    def __init__(self, manifest: Manifest, streams: Streams, functions: Functions, clock: Clock,
                 deliverer: Deliverer, executor: Executor | None = None, health: Health | None = None) -> None:
        """`deliverer` sends the on-failure records: the daemon's one, which a reload updates."""
        super().__init__(manifest, functions, clock, executor, threads=max(1, manifest.concurrency), health=health)
        self.streams = streams
        self._cursors: dict[str, dict[tuple[int, int], Cursor]] = {}
        #: (mapping, shard, lane) of every batch running, whichever cursor started it: a rebuilt
        #: mapping waits for them. Added by the poller thread, discarded by the batch's thread, under
        #: `_inflight_lock`.
        self._inflight: set[tuple[str, int, int]] = set()
        self._inflight_lock = threading.Lock()
        self._deliverer = deliverer

    manifest_mappings = staticmethod(manifest_mappings)

    def _mappings_replaced(self) -> None:
        for gone in set(self._cursors) - set(self.mappings):
            del self._cursors[gone]

    # -- rounds ---------------------------------------------------------------------------------------

    def _expire(self, manifest: Manifest, now: float) -> None:
        """Drop records past their stream's retention."""
        self.streams.expire(manifest.streams.values(), now)

    def _poll(self, manifest: Manifest, mapping: StreamMapping, now: float) -> float:
        stream = manifest.streams.get(mapping.trigger.stream)
        fn = manifest.functions.get(mapping.function)
        if stream is None or fn is None:
            return POLL_S
        with self._lock:  # not while `apply` drops the mapping
            cursors = self._cursors_of(mapping, stream) if mapping.id in self.mappings else []
        return min([POLL_S, *(self._advance(manifest, mapping, stream, fn, cursor, now) for cursor in cursors)])

    def cursors(self, mapping: str) -> list[Cursor]:
        return list(self._cursors.get(mapping, {}).values())

    def _cursors_of(self, mapping: StreamMapping, stream: Stream) -> list[Cursor]:
        """The mapping's cursors: kept while its layout (shards x lanes) stays, else rebuilt from the
        stored positions once its batches in flight are done."""
        lanes = mapping.trigger.parallelization_factor
        shards = self.streams.shards(stream)
        wanted = {(shard, lane) for shard in shards for lane in range(lanes)}
        known = self._cursors.get(mapping.id)
        if known is not None and set(known) == wanted:
            return list(known.values())
        with self._inflight_lock:
            running = any(key[0] == mapping.id for key in self._inflight)
        if running:
            return []
        stored = self.streams.positions(mapping.id)
        cursors: dict[tuple[int, int], Cursor] = {}
        resets: dict[int, dict[int, int]] = {}
        for shard in sorted(shards):
            in_shard = {lane: seq for (s, lane), seq in stored.items() if s == shard}
            if set(in_shard) == set(range(lanes)):  # as it was: the same cursors, or fresh ones at the positions
                for lane, seq in in_shard.items():
                    old = (known or {}).get((shard, lane))
                    cursors[(shard, lane)] = old if old is not None else Cursor(shard, lane, seq)
                continue
            if in_shard:  # the lanes changed: all start where the least advanced was (again, never skipped)
                start = min(in_shard.values())
            elif stored:  # a shard new to a running mapping: from its first record
                start = 0
            else:
                start = self.streams.start(stream.name, shard, mapping.trigger.starting_position,
                                           mapping.trigger.starting_position_timestamp)
            resets[shard] = dict.fromkeys(range(lanes), start)
            cursors.update({(shard, lane): Cursor(shard, lane, start) for lane in range(lanes)})
        if resets:
            self.streams.reset_positions(mapping.id, resets)
        self._cursors[mapping.id] = cursors
        return list(cursors.values())

    def _current(self, mapping: StreamMapping, cursor: Cursor) -> bool:
        with self._lock:
            return self._cursors.get(mapping.id, {}).get(cursor.key()) is cursor

    def _advance(self, manifest: Manifest, mapping: StreamMapping, stream: Stream, fn: Function, cursor: Cursor,
                 now: float) -> float:
        with self._inflight_lock:
            running = (mapping.id, *cursor.key()) in self._inflight
        if running:
            return POLL_S
        if now < cursor.not_before:
            return cursor.not_before - now
        trigger = mapping.trigger
        if cursor.pending:
            batch, retries = cursor.pending[0]
        else:
            lanes = trigger.parallelization_factor
            top, batch = self.streams.read(stream.name, cursor.shard, max(cursor.position, cursor.scanned),
                                           trigger.batch_size, cursor.lane, lanes)
            if lanes > 1:
                cursor.scanned = batch[0].seq - 1 if batch else top
            batch = fit(batch, stream.format)
            retries = 0
            gone = [r for r in batch if now - r.arrived_at > stream.retention_s]
            if gone:  # expired before anything read them: gone from the stream, as on Kinesis
                self._checkpoint(mapping, cursor, gone[-1].seq)
                return 0.0
            if not batch:
                cursor.waiting_since = None
                return POLL_S
            if trigger.maximum_batching_window_s and len(batch) < trigger.batch_size:
                cursor.waiting_since = cursor.waiting_since or now
                due = cursor.waiting_since + trigger.maximum_batching_window_s
                if now < due:
                    return due - now
            cursor.waiting_since = None
            cursor.pending = [(batch, 0)]
        max_age = stream.retention_s  # with maximum_record_age -1, a failing batch is retried until it expires
        if 0 <= trigger.maximum_record_age_s < max_age:
            max_age = trigger.maximum_record_age_s
        old = [r for r in batch if now - r.arrived_at > max_age]
        if old:  # records only arrive later within a lane: the old ones lead the batch
            self._give_up(manifest, mapping, stream, cursor, old, "RecordAgeExceeded", retries, now)
            rest = batch[len(old):]
            cursor.pending[0:1] = [(rest, retries)] if rest else []
            return 0.0
        with self._inflight_lock:
            self._inflight.add((mapping.id, *cursor.key()))
        # A batch whose task fails (logged) or never runs is still the cursor's first pending one: the
        # lane tries it again after a backoff, so nothing is skipped.
        if not submit_task(self._executor, self._run_batch, manifest, mapping, stream, fn, cursor, batch, retries,
                           what=f"a batch of {len(batch)} from {stream.name} to {fn.name}",
                           release=lambda: self._back_off(cursor)):
            with self._inflight_lock:  # stopping: the executor takes no more work
                self._inflight.discard((mapping.id, *cursor.key()))
        return POLL_S

    def _back_off(self, cursor: Cursor) -> None:
        cursor.not_before = max(cursor.not_before, self.clock.time() + backoff(1))

    # -- one batch ------------------------------------------------------------------------------------

    def _run_batch(self, manifest: Manifest, mapping: StreamMapping, stream: Stream, fn: Function, cursor: Cursor,
                   batch: list[StreamRecord], retries: int) -> None:
        try:
            try:
                result = self.functions.invoke(fn.name, stream_event(batch, manifest, stream))
            except (TooManyRequests, ShuttingDown, FunctionNotFound):
                cursor.not_before = self.clock.time() + backoff(1)  # a throttle uses no retry
                return
            if not self._current(mapping, cursor):  # a reload rebuilt the mapping meanwhile
                self._note(mapping.function, f"{stream.name}: the mapping changed while a batch of {len(batch)} "
                                             "ran; its result is set aside and its records run again")
                return
            self._settle(manifest, mapping, stream, cursor, batch, retries, result.outcome, result.payload,
                         result.error_type)
        except Exception:
            self._back_off(cursor)  # before the lane is free again
            raise  # (logged by `submit_task`)
        finally:
            with self._inflight_lock:
                self._inflight.discard((mapping.id, *cursor.key()))
            self.wake()

    def _settle(self, manifest: Manifest, mapping: StreamMapping, stream: Stream, cursor: Cursor,
                batch: list[StreamRecord], retries: int, outcome: Outcome, payload: bytes,
                error_type: str | None) -> None:
        """Decide what a batch's result means for the lane (the component tests call this directly)."""
        now = self.clock.time()
        trigger = mapping.trigger
        failed_from: StreamRecord | None = None
        whole = outcome is not Outcome.success
        if not whole and trigger.report_batch_item_failures:
            try:
                failed_from = first_failure(payload, batch, stream)
            except BatchFailure as e:
                self._note(mapping.function, f"{stream.name}: the whole batch fails: {e}")
                whole = True
        if not whole and failed_from is None:  # done: the position moves past the batch
            cursor.pending.pop(0)
            self._checkpoint(mapping, cursor, batch[-1].seq)
            return
        if failed_from is not None:  # the records before the failed one are done
            done = [r for r in batch if r.seq < failed_from.seq]
            batch = [r for r in batch if r.seq >= failed_from.seq]
            if done:
                self._checkpoint(mapping, cursor, done[-1].seq)
        elif trigger.bisect_batch_on_function_error and len(batch) > 1:
            half = len(batch) // 2
            cursor.pending[0:1] = [(batch[:half], retries), (batch[half:], retries)]  # a split is not a retry
            self._note(mapping.function, f"{stream.name}: batch of {len(batch)} failed ({error_type}); split in two")
            return
        retries += 1
        limit = trigger.maximum_retry_attempts
        if limit != -1 and retries > limit:
            self._give_up(manifest, mapping, stream, cursor, batch, "RetryAttemptsExhausted", retries, now,
                          function_error=outcome is not Outcome.success)
            cursor.pending.pop(0)
            return
        cursor.pending[0] = (batch, retries)
        cursor.not_before = now + backoff(retries)
        why = error_type or "reported failures"
        shard = shard_name(stream, cursor.shard)
        self._note(mapping.function, f"{stream.name} {shard}: batch of {len(batch)} failed ({why}); "
                                     f"retry {retries}{'' if limit == -1 else f' of {limit}'}; the shard waits")

    def _checkpoint(self, mapping: StreamMapping, cursor: Cursor, seq: int) -> None:
        self.streams.checkpoint(mapping.id, cursor.shard, cursor.lane, seq)
        cursor.position = max(cursor.position, seq)

    def _give_up(self, manifest: Manifest, mapping: StreamMapping, stream: Stream, cursor: Cursor,
                 records: list[StreamRecord], condition: str, invocations: int, now: float,
                 function_error: bool = False) -> None:
        """Records are discarded: the on-failure record and the new position commit together. A bucket
        or folder also gets the invocation's payload, as S3 destinations do."""
        target = mapping.trigger.on_failure
        payload = None if target is None or target.kind is TargetKind.queue else stream_event(records, manifest,
                                                                                              stream)
        record = on_failure_record(manifest, stream, mapping.function, records, condition, invocations, now,
                                   function_error=function_error, payload=payload)

        def settle(tx) -> Delivered | None:
            return self._send(tx, manifest, mapping, stream, target, records[0], record, now) if target else None

        self._deliverer.committed([self.streams.checkpoint(mapping.id, cursor.shard, cursor.lane, records[-1].seq,
                                                           along=settle)])
        cursor.position = max(cursor.position, records[-1].seq)
        where = f" -> {target.kind.value}:{target.name}" if target else ""
        shard = shard_name(stream, cursor.shard)
        self._note(mapping.function, f"{stream.name} {shard}: {len(records)} record(s) given up "
                                     f"({condition}){where}; the shard moves on")

    def _send(self, tx, manifest: Manifest, mapping: StreamMapping, stream: Stream, target: Target,
              first: StreamRecord, record: bytes, now: float) -> Delivered | None:
        """In a bucket or folder, at Lambda's key for an event source mapping's failures."""
        t = utc(now)
        esm = uuid.uuid5(uuid.NAMESPACE_URL, mapping.id)
        shard = shard_name(stream, first.shard)
        key = f"aws/lambda/{esm}/{shard}/{t:%Y/%m/%d}/{t:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        return self._deliverer.send(tx, target, record, now, function=mapping.function, key=key)
