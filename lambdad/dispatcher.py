"""The asynchronous path: accept events durably, claim the due ones where there is capacity, invoke,
then settle each try in one transaction: done, retry later, or dead-letter plus destinations.

`step(now)` is one round and returns how long to sleep; `run()` is the thin loop around it (tests
call `step` with a fake clock and an executor that runs invocations inline). Sources
call `submit`, which returns once the event is committed and never waits for an invocation, so a
flood of events queues up instead of stalling the file watcher or the scheduler.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from lambdad.clock import Clock, iso_millis
from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.events.destinations import (
    Condition,
    dead_letter_attributes,
    invocation_record,
    message_file,
    object_key,
)
from lambdad.health import Health
from lambdad.manifest.model import (
    DEFAULT_MAX_EVENT_AGE_S,
    Function,
    Manifest,
    Queue,
    RecursiveLoop,
    Target,
    TargetKind,
)
from lambdad.outcomes.backoff import backoff
from lambdad.outcomes.retry import RetryAt, after_function_error, after_throttle, on_claim
from lambdad.runtime.functions import Functions, ShuttingDown, check_payload
from lambdad.runtime.invocation import InvokeResult, Outcome, new_request_id
from lambdad.runtime.pool import Limiter
from lambdad.safefiles import UnsafePath, write_inside
from lambdad.store import Store, deadletters, events, outbox, queues
from lambdad.store.deadletters import DeadLetter
from lambdad.store.events import QueuedEvent
from lambdad.tasks import submit as submit_task
from lambdad.tracing import MAX_CHAIN, chain_count, for_invocation, is_recursive_loop, longest_chain

log = logging.getLogger(__name__)

#: Lambda's limit on an asynchronous invocation's payload (raised from 256 KB in October 2025).
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
#: Lambda cuts a loop of functions invoking each other (here: through destinations) after 16 hops.
MAX_HOPS = 16
#: A claim outlives the invocation's timeout by this much before another claim may take the event.
LEASE_MARGIN_S = 60.0
#: Longest sleep between rounds: events written by another process (the CLI) are noticed this fast.
POLL_S = 0.25
#: How often events of functions that left the manifest are checked for their age.
ORPHAN_SWEEP_S = 60.0
#: At most this many events are claimed for one concurrency limit in one round.
CLAIM_BATCH = 256
#: A folder that cannot be written is retried after 1 s, 2 s, 4 s ... at most this long apart.
MAX_DELIVERY_WAIT_S = 300.0
#: The error a dead letter of an event stopped as a recursive loop carries (the SDKs' words for it).
RECURSIVE_LOOP_ERROR = json.dumps({
    "errorType": "RecursiveInvocationException",
    "errorMessage": "Lambda has detected your function being invoked in a recursive loop with other AWS resources "
                    "and stopped your function's invocation."}).encode()
#: An event whose invocation task failed (a bug, logged) runs again after this long.
TASK_RETRY_S = 1.0


def enqueue_event(
    store: Store,
    manifest: Manifest,
    function: str,
    payload: bytes,
    now: float,
    source: str = "invoke",
    request_id: str | None = None,
    trace: str | None = None,
) -> str:
    """Accept an asynchronous invocation: validated, committed, and given its request id and its
    trace header (continuing `trace`, the caller's, if it sent one) for good."""
    if function not in manifest.functions:
        raise FunctionNotFound(function, list(manifest.functions))
    payload = check_payload(payload, MAX_ASYNC_PAYLOAD_BYTES)
    request_id = request_id or new_request_id()
    invocation_trace = for_invocation(trace, function, now)
    store.write(lambda tx: events.enqueue(tx, request_id, function, payload, now, source, trace=invocation_trace))
    return request_id


class Dispatcher:
    def __init__(
        self,
        store: Store,
        functions: Functions,
        clock: Clock,
        on_warning: Callable[[str], None] | None = None,
        executor: Executor | None = None,
        health: Health | None = None,
    ) -> None:
        self.store = store
        self._health = health or Health()
        self.functions = functions
        self.manifest = functions.manifest
        self.clock = clock
        self._warn = on_warning or log.warning
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._claimed: dict[str, int] = {}  #: per function: claimed and not yet settled
        #: Outcomes whose commit failed (a full disk): committed first thing in the next rounds, so
        #: that the event neither waits out its lease nor runs again.
        self._unsettled: list[tuple[Function, QueuedEvent, Callable]] = []
        self._lock = threading.Lock()
        self._claiming = True
        self._abandon = False
        self._step_lock = threading.Lock()  #: one round at a time, whoever runs it
        capacity = self.manifest.concurrency  # reservations are part of it
        self._executor = executor or ThreadPoolExecutor(max_workers=max(1, capacity), thread_name_prefix="async")
        self._thread: threading.Thread | None = None
        self._groups = self._limit_groups()
        self._next_orphan_sweep = 0.0
        #: Every bucket's folder, including buckets a reload removed: an invocation that started
        #: before the reload delivers its dead letter or record where its configuration said.
        self._bucket_paths = {n: str(b.path) for n, b in self.manifest.buckets.items()}

    def _limit_groups(self) -> list[tuple[tuple[str, ...], Limiter]]:
        """The functions that share each concurrency limit."""
        groups: dict[int, tuple[list[str], Limiter]] = {}
        for name in self.manifest.functions:
            limiter = self.functions.pool(name).limiter
            groups.setdefault(id(limiter), ([], limiter))[0].append(name)
        return [(tuple(names), limiter) for names, limiter in groups.values()]

    def apply(self, manifest: Manifest) -> None:
        """A reload (after `Functions.apply`): the new functions, limits and async settings."""
        with self._lock:
            self.manifest = manifest
            self._groups = self._limit_groups()
            self._bucket_paths |= {n: str(b.path) for n, b in manifest.buckets.items()}
        self._wake.set()

    # -- accepting ------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Events were queued by someone else (a bucket, a schedule): look now."""
        self._wake.set()

    def poke(self) -> None:
        """Like `wake`, but start what is due right here, in the caller's thread, when no round is
        running: a source that just committed events saves a thread hand-off (latency)."""
        if self._step_lock.acquire(blocking=False):
            try:
                self._step(self.clock.time())
            except Exception as e:  # never the caller's problem (a bucket's or a schedule's thread)
                self._health.failing("dispatcher", e)
            else:
                self._health.recovered("dispatcher")
            finally:
                self._step_lock.release()
        else:
            self._wake.set()

    def submit(self, function: str, payload: bytes, source: str = "invoke", request_id: str | None = None,
               trace: str | None = None) -> str:
        request_id = enqueue_event(self.store, self.manifest, function, payload, self.clock.time(), source, request_id,
                                   trace)
        self._wake.set()
        return request_id

    # -- the loop -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self.store.transaction() as tx:
            recovered = events.release_all(tx)
        if recovered:
            self._warn(f"{recovered} event(s) were running when lambdad last stopped; they will run again")
        self._thread = threading.Thread(target=self.run, name="dispatcher", daemon=True)
        self._thread.start()

    def run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                delay = self.step(self.clock.time())
            except Exception as e:  # the loop must survive anything one round does (a full disk): back off
                delay = self._health.failing("dispatcher", e)
            else:
                self._health.recovered("dispatcher")

    def step(self, now: float) -> float:
        """Deliver due files, claim and start due events; return seconds until the next round."""
        with self._step_lock:
            return self._step(now)

    def _step(self, now: float) -> float:
        self._commit_unsettled()
        self._deliver_files(now)
        if now >= self._next_orphan_sweep:
            self._expire_orphans(now)
            self._next_orphan_sweep = now + ORPHAN_SWEEP_S
        if self._claiming:
            for function, event in self._claim(now):
                self._start(function, event, now)
        with self.store.reading() as tx:
            next_event, next_file = events.next_due(tx), outbox.next_due(tx)
        due = [t - now for t in (next_event, next_file) if t is not None and t > now]
        # Events that are due but found no free slot wait for a settling invocation to wake us.
        return max(0.0, min([POLL_S, *due]))

    def _claim(self, now: float) -> list[tuple[Function, QueuedEvent]]:
        claimed: list[tuple[Function, QueuedEvent]] = []
        with self._lock:  # one configuration for the whole round, whatever a reload does meanwhile
            manifest, groups = self.manifest, self._groups
        for names, free in self._free_capacity(groups).items():
            if free <= 0:
                continue
            lease_s = max(manifest.functions[n].timeout_s for n in names) + LEASE_MARGIN_S
            with self.store.transaction() as tx:
                batch = events.claim(tx, names, now, lease_s, free)
            with self._lock:
                for ev in batch:
                    self._claimed[ev.function] = self._claimed.get(ev.function, 0) + 1
            claimed += [(manifest.functions[ev.function], ev) for ev in batch]
        return claimed

    def _free_capacity(self, groups: list[tuple[tuple[str, ...], Limiter]]) -> dict[tuple[str, ...], int]:
        """Free slots per concurrency limit (one shared by the unreserved functions, one per reservation).

        Events of functions that are not in the manifest are never claimed: they wait (see the
        README on hot reload). A reservation of 0 claims everything due, to fail it at once.
        """
        free = {}
        with self._lock:
            for names, limiter in groups:
                if limiter.capacity == 0:
                    free[names] = CLAIM_BATCH
                    continue
                claimed = sum(self._claimed.get(n, 0) for n in names)
                free[names] = min(CLAIM_BATCH, limiter.capacity - max(limiter.in_use, claimed))
        return free

    def _start(self, fn: Function, ev: QueuedEvent, now: float) -> None:
        final = on_claim(fn.async_config, fn.reserved_concurrency, ev.enqueued_at, now)
        if final is not None:
            self._settle(fn, ev, lambda tx: self._fail(tx, fn, ev, final.condition, ev.last_response, now))
            return
        ev = self._continue_writers_chain(fn, ev, now)
        if ev is None:
            return
        if fn.recursive_loop is RecursiveLoop.terminate and is_recursive_loop(ev.trace, fn.name):
            self._note(fn, ev, f"stopped: this would be the function's invocation {chain_count(ev.trace, fn.name) + 1} "
                               f"in one chain of events, a recursive loop (Lambda stops it after {MAX_CHAIN}; "
                               "`recursive_loop: allow` lets it run)", now)
            self._settle(fn, ev, lambda tx: self._fail(tx, fn, ev, Condition.recursive_loop, RECURSIVE_LOOP_ERROR, now))
            return
        # Every path of `_invoke` settles the event last: what raises before that (a bug in an outcome
        # handler) is put back here, due shortly (not at once: a bug that always raises must not spin).
        submit_task(self._executor, self._invoke, fn, ev, what=f"the async invocation of {fn.name} ({ev.request_id})",
                    release=lambda: self._settle(fn, ev, lambda tx: events.retry_later(
                        tx, ev.id, self.clock.time() + TASK_RETRY_S, invoked=False)))

    def _continue_writers_chain(self, fn: Function, ev: QueuedEvent, now: float) -> QueuedEvent | None:
        """A bucket event whose file an invocation wrote continues that invocation's chain (see
        `runtime/running.py`): its trace is replaced, for good. None: its writer's report may still be
        on its way, and the event is put back until it must have arrived (a few milliseconds)."""
        writers = self.functions.recent.writers(ev.request_id, now)
        if writers.waiting:
            self._settle(fn, ev, lambda tx: events.retry_later(tx, ev.id, writers.until, invoked=False))
            return None
        parent = longest_chain(list(writers.traces), fn.name)
        if parent is None:
            return ev
        trace = for_invocation(parent, fn.name, now)
        self.store.write(lambda tx: events.set_trace(tx, ev.id, trace))
        return replace(ev, trace=trace)

    def _invoke(self, fn: Function, ev: QueuedEvent) -> None:
        try:
            result = self.functions.invoke(fn.name, ev.payload, request_id=ev.request_id, trace_id=ev.trace)
        except TooManyRequests:
            self._on_throttle(fn, ev)
        except (ShuttingDown, FunctionNotFound):
            self._settle(fn, ev, lambda tx: events.release(tx, [ev.id]))
        except Exception:
            log.exception("the async invocation of %s (%s) is put back to run again: invoking it failed", fn.name,
                          ev.request_id)
            self._settle(fn, ev, lambda tx: events.release(tx, [ev.id]))
        else:
            if self._abandon:  # killed by a forced stop: not the function's fault, run it again next time
                self._settle(fn, ev, lambda tx: events.release(tx, [ev.id]))
                return
            self._on_result(fn, ev, result)

    def _settle(self, fn: Function, ev: QueuedEvent, apply: Callable) -> None:
        try:
            self.store.write(apply)
        except sqlite3.OperationalError as e:  # the store (a full disk): the outcome waits to be committed
            with self._lock:
                self._unsettled.append((fn, ev, apply))
            self._health.failing("dispatcher", e)
            self._wake.set()
            return  # (its claim still counts: the slot is taken until the outcome is committed)
        except Exception:  # never leave the event leased with nobody to settle it
            log.exception("the async invocation of %s (%s) is put back to run again: committing its outcome failed",
                          fn.name, ev.request_id)
            self._release(ev)
        self._settled(fn)

    def _release(self, ev: QueuedEvent) -> None:
        try:
            self.store.write(lambda tx: events.release(tx, [ev.id]))
        except Exception:  # the store itself fails: the lease runs out, then it runs again
            log.exception("the async invocation %s runs again when its lease runs out: putting it back failed",
                          ev.request_id)

    def _settled(self, fn: Function) -> None:
        with self._lock:
            self._claimed[fn.name] = self._claimed.get(fn.name, 1) - 1
        self._wake.set()

    def _commit_unsettled(self) -> None:
        """Outcomes a failed commit left in memory, in order; raises (the round fails, and backs off)
        while the store still cannot take them."""
        with self._lock:
            held, self._unsettled = self._unsettled, []
        for i, (fn, ev, apply) in enumerate(held):
            try:
                self.store.write(apply)
            except sqlite3.OperationalError:
                with self._lock:
                    self._unsettled[:0] = held[i:]
                raise
            except Exception:
                log.exception("the async invocation of %s (%s) is put back to run again: committing its outcome "
                              "failed", fn.name, ev.request_id)
                self._release(ev)
            self._settled(fn)

    # -- outcomes -------------------------------------------------------------------------------------

    def _on_result(self, fn: Function, ev: QueuedEvent, result: InvokeResult) -> None:
        now = self.clock.time()
        cfg = fn.async_config
        if result.outcome is Outcome.success:
            def succeed(tx):
                events.delete(tx, ev.id)
                events.bump_stats(tx, fn.name, succeeded=True)
                if cfg.on_success:
                    record = self._record(fn, ev, Condition.success, ev.invocations + 1, result.payload, None, now)
                    self._deliver(tx, fn, ev, cfg.on_success, record, now)
            self._settle(fn, ev, succeed)
            return
        decision = after_function_error(cfg, ev.errors + 1, ev.enqueued_at, now)
        attempt, attempts = ev.errors + 1, cfg.maximum_retry_attempts + 1
        if isinstance(decision, RetryAt):
            self._note(fn, ev, f"attempt {attempt} of {attempts} failed ({result.error_type}); "
                               f"retrying in {decision.due_at - now:.0f}s", now)
            self._settle(fn, ev, lambda tx: events.retry_later(
                tx, ev.id, decision.due_at, invoked=True, error=result.error_type, response=result.payload))
            return
        failed = replace(ev, invocations=ev.invocations + 1, errors=ev.errors + 1, last_error=result.error_type,
                         last_response=result.payload)
        self._settle(fn, ev, lambda tx: self._fail(tx, fn, failed, decision.condition, result.payload, now))

    def _on_throttle(self, fn: Function, ev: QueuedEvent) -> None:
        now = self.clock.time()
        decision = after_throttle(fn.async_config, ev.throttles + 1, ev.enqueued_at, now)
        if isinstance(decision, RetryAt):
            self._settle(fn, ev, lambda tx: events.retry_later(tx, ev.id, decision.due_at, invoked=False,
                                                               throttled=True))
        else:
            self._settle(fn, ev, lambda tx: self._fail(tx, fn, ev, decision.condition, ev.last_response, now))

    def _fail(
        self, tx: sqlite3.Connection, fn: Function, ev: QueuedEvent, condition: Condition, response: bytes | None,
        now: float,
    ) -> None:
        """Final failure: dead letter (kept for `lambdad dlq` whatever the target), on_failure record."""
        cfg = fn.async_config
        events.delete(tx, ev.id)
        events.bump_stats(tx, fn.name, succeeded=False)
        error_type, error_message = _error_of(response, condition)
        error_code = "200" if ev.invocations else "429"
        target, message_id = "", None
        if cfg.dead_letter:
            attributes = dead_letter_attributes(ev.request_id, error_code, error_message)
            target, message_id = self._dead_letter(tx, fn, ev, cfg.dead_letter, attributes, now)
        deadletters.add(tx, DeadLetter(0, ev.request_id, fn.name, ev.payload, condition.value, ev.invocations,
                                       error_type, error_message, response, target, message_id, ev.enqueued_at, now))
        if cfg.on_failure:
            record = self._record(fn, ev, condition, ev.invocations, response, "Unhandled", now)
            self._deliver(tx, fn, ev, cfg.on_failure, record, now)
        where = f" -> {target}" if target else ""
        self._note(fn, ev, f"failed for good: {condition.value} after {ev.invocations} invocation(s){where}", now)

    def _dead_letter(self, tx, fn: Function, ev: QueuedEvent, target: Target, attributes: dict,
                     now: float) -> tuple[str, str | None]:
        if target.kind is TargetKind.queue:
            sent = queues.send(tx, self._queue(target.name), ev.payload, now, attributes)
            return f"queue:{target.name}", sent.message_id
        folder, label = self._folder_of(target)
        name = f"{iso_millis(now).replace(':', '.')}-{ev.request_id}.json"
        if target.kind is TargetKind.bucket:
            name = f"dead-letters/{fn.name}/{name}"
        outbox.add(tx, folder, name, message_file(ev.payload, attributes), fn.name, now)
        return label, None

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

    def _deliver(self, tx, fn: Function, ev: QueuedEvent, target: Target, record: bytes, now: float) -> None:
        if target.kind is TargetKind.function:
            if ev.hops + 1 >= MAX_HOPS:
                self._note(fn, ev, f"not invoking destination {target.name!r}: the chain of destinations is "
                                   f"{MAX_HOPS} long (Lambda stops recursive loops there)", now)
                return
            events.enqueue(tx, new_request_id(), target.name, record, now, "destination", ev.hops + 1,
                           for_invocation(ev.trace, target.name, now))
            self._wake.set()
        elif target.kind is TargetKind.queue:  # (its AWSTraceHeader: a function the queue triggers continues the chain)
            queues.send(tx, self._queue(target.name), record, now, trace_header=ev.trace)
        else:
            folder, _ = self._folder_of(target)
            outbox.add(tx, folder, object_key(fn.name, now, str(uuid.uuid4())), record, fn.name, now)

    def _queue(self, name: str) -> Queue | str:
        """The queue's settings (its delay applies), or just its name if a reload removed it."""
        return self.manifest.queues.get(name) or name

    def _folder_of(self, target: Target) -> tuple[str, str]:
        if target.kind is TargetKind.bucket:
            return self._bucket_paths[target.name], f"bucket:{target.name}"
        return target.name, f"folder:{target.name}"

    def _note(self, fn: Function, ev: QueuedEvent, message: str, now: float) -> None:
        """A line in the function's log about the async event's fate (AWS shows this only in metrics)."""
        self.functions.logbook.note(fn.name, f"async {message}", ev.request_id, now)

    def _expire_orphans(self, now: float) -> None:
        """Events of a function no longer in the manifest wait (it may come back) until Lambda's
        longest event age has passed; then they become dead letters (EventAgeExceeded)."""
        with self.store.transaction() as tx:
            for ev in events.orphans(tx, list(self.manifest.functions), now - DEFAULT_MAX_EVENT_AGE_S):
                events.delete(tx, ev.id)
                deadletters.add(tx, DeadLetter(0, ev.request_id, ev.function, ev.payload,
                                               Condition.event_age_exceeded.value, ev.invocations, ev.last_error,
                                               "the function was removed from the manifest", ev.last_response, "",
                                               None, ev.enqueued_at, now))

    # -- files ----------------------------------------------------------------------------------------

    def _deliver_files(self, now: float) -> None:
        with self.store.reading() as tx:
            pending = outbox.due(tx, now)
        for item in pending:
            try:
                write_inside(Path(item.folder), item.name, item.content)
            except UnsafePath as e:
                # It cannot succeed while the link is there: said once (the reason is kept with the file),
                # and the file is kept, not dropped: looked at again quietly, it is written once the link is gone.
                if item.last_error != str(e):
                    self._warn(f"{item.function}: not written: {e}; the file is kept in the state folder and "
                               f"written once that is fixed (looked at every {MAX_DELIVERY_WAIT_S:.0f}s)")
                with self.store.transaction() as tx:
                    outbox.failed(tx, item.id, str(e), now + MAX_DELIVERY_WAIT_S)
            except OSError as e:
                wait = backoff(item.attempts + 1, 1.0, MAX_DELIVERY_WAIT_S)  # (1 s, 2 s, 4 s ...)
                self._warn(f"{item.function}: cannot write {Path(item.folder) / item.name}: {e.strerror}; "
                           f"retrying in {wait:.0f}s")
                with self.store.transaction() as tx:
                    outbox.failed(tx, item.id, str(e), now + wait)
            else:
                with self.store.transaction() as tx:
                    outbox.done(tx, item.id)

    # -- stopping -------------------------------------------------------------------------------------

    def stop_claiming(self) -> None:
        """Graceful stop, first stage: start nothing new; running invocations still settle."""
        self._claiming = False

    def abandon(self) -> None:
        """Forced stop: invocations that end now are put back for the next start, not counted."""
        self._claiming = False
        self._abandon = True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self._executor.shutdown(wait=True)
        with self._lock:
            unsettled = len(self._unsettled)
        if unsettled:  # (their leases end with this process: they run again at the next start)
            self._warn(f"{unsettled} async outcome(s) could not be committed (the store cannot be written); "
                       "those events run again at the next start")


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


def write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary name beside `path`, then rename: a watcher never sees a half-written file.
    The file's own name is never followed if it is a link (see `write_inside`, which also guards the
    folders between a root and the file)."""
    write_inside(path.parent, path.name, content)
