"""The asynchronous path: claim the due events where there is capacity, invoke, then settle each try
in one transaction: done, retry later, or dead-letter plus destinations.

`step(now)` is one round and returns how long to wait; `lambdad.loops.Loop` runs it on a thread
(tests call `step` with a fake clock and an executor that runs invocations inline). Events come in
through `invocations` (`services.asyncinvoke`), which commits them and wakes the loop, so a flood of
events queues up instead of stalling the file watcher or the scheduler. What an outcome commits is
`outcomes.asyncsettle`; its files are written by `outcomes.outbox`, a loop of its own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace

from lambdad.backoff import backoff
from lambdad.clock import Clock
from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.health import Health
from lambdad.loops import Loop
from lambdad.manifest.model import Function, Manifest, RecursiveLoop
from lambdad.outcomes.asyncsettle import RECURSIVE_LOOP_ERROR, AsyncOutcomes
from lambdad.outcomes.deliver import Deliverer
from lambdad.outcomes.outbox import Outbox
from lambdad.outcomes.retry import RetryAt, after_function_error, after_throttle, on_claim
from lambdad.payloads.destinations import Condition
from lambdad.runtime.functions import Functions, ShuttingDown
from lambdad.runtime.invocation import InvokeResult, Outcome
from lambdad.runtime.pool import Limiter
from lambdad.services.asyncinvoke import AsyncInvocations
from lambdad.store import Store, invocations
from lambdad.store.invocations import QueuedEvent
from lambdad.tasks import submit as submit_task
from lambdad.tracing import MAX_CHAIN, chain_count, for_invocation, is_recursive_loop, longest_chain

log = logging.getLogger(__name__)

#: A claim outlives the invocation's timeout by this much before another claim may take the event.
LEASE_MARGIN_S = 60.0
#: Longest sleep between rounds: events written by another process (the CLI) are noticed this fast.
POLL_S = 0.25
#: How often events of functions that left the manifest are checked for their age.
ORPHAN_SWEEP_S = 60.0
#: At most this many events are claimed for one concurrency limit in one round.
CLAIM_BATCH = 256


class Dispatcher:
    """The async invocations' engine. It builds the parts of its path (`invocations`, the way in;
    `outbox`, the files' writer; `deliverer`, shared with the stream poller) and starts and stops
    them with itself."""

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
        self.loop = Loop("dispatcher", self.step, clock, self._health)
        self.invocations = AsyncInvocations(store, clock, self.manifest, on_enqueued=self.wake)
        self.outbox = Outbox(store, clock, self._warn, self._health)
        self.deliverer = Deliverer(self.manifest, on_files=self.outbox.wake, on_enqueued=self.wake)
        self.outcomes = AsyncOutcomes(self.manifest, self.deliverer, lambda *note: self._note(*note))
        self._claimed: dict[str, int] = {}  #: per function: claimed and not yet settled
        #: Outcomes whose commit failed (a full disk): committed first thing in the next rounds, so
        #: that the event neither waits out its lease nor runs again.
        self._unsettled: list[tuple[Function, QueuedEvent, Callable]] = []
        self._lock = threading.Lock()
        self._claiming = True
        self._abandon = False
        capacity = self.manifest.concurrency  # reservations are part of it
        self._executor = executor or ThreadPoolExecutor(max_workers=max(1, capacity), thread_name_prefix="async")
        self._groups = self._limit_groups()
        self._next_orphan_sweep = 0.0

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
        self.invocations.apply(manifest)
        self.deliverer.apply(manifest)
        self.outcomes.apply(manifest)
        self.wake()

    def wake(self) -> None:
        """Events were queued (a bucket, a schedule, the API) or a slot came free: look now."""
        self.loop.wake()


    # -- the loop -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self.store.transaction() as tx:
            recovered = invocations.release_all(tx)
        if recovered:
            self._warn(f"{recovered} event(s) were running when lambdad last stopped; they will run again")
        self.outbox.start()
        self.loop.start()

    def step(self, now: float) -> float:
        """Claim and start due events; return seconds until the next round."""
        self._commit_unsettled()
        if now >= self._next_orphan_sweep:
            with self.store.transaction() as tx:
                self.outcomes.expire_orphans(tx, now)
            self._next_orphan_sweep = now + ORPHAN_SWEEP_S
        if self._claiming:
            for function, event in self._claim(now):
                self._start(function, event, now)
        with self.store.reading() as tx:
            next_event = invocations.next_due(tx)
        if next_event is None or next_event <= now:  # (due ones that found no free slot: a settling one wakes us)
            return POLL_S
        return min(POLL_S, next_event - now)

    def _claim(self, now: float) -> list[tuple[Function, QueuedEvent]]:
        claimed: list[tuple[Function, QueuedEvent]] = []
        with self._lock:  # one configuration for the whole round, whatever a reload does meanwhile
            manifest, groups = self.manifest, self._groups
        for names, free in self._free_capacity(groups).items():
            if free <= 0:
                continue
            lease_s = max(manifest.functions[n].timeout_s for n in names) + LEASE_MARGIN_S
            with self.store.transaction() as tx:
                batch = invocations.claim(tx, names, now, lease_s, free)
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
            self._settle(fn, ev, lambda tx: self.outcomes.fail(tx, fn, ev, final.condition, ev.last_response, now))
            return
        ev = self._continue_writers_chain(fn, ev, now)
        if ev is None:
            return
        if fn.recursive_loop is RecursiveLoop.terminate and is_recursive_loop(ev.trace, fn.name):
            self._note(fn, ev, f"stopped: this would be the function's invocation {chain_count(ev.trace, fn.name) + 1} "
                               f"in one chain of events, a recursive loop (Lambda stops it after {MAX_CHAIN}; "
                               "`recursive_loop: allow` lets it run)", now)
            self._settle(fn, ev, lambda tx: self.outcomes.fail(tx, fn, ev, Condition.recursive_loop,
                                                               RECURSIVE_LOOP_ERROR, now))
            return
        # Every path of `_invoke` settles the event last: what raises before that (a bug in an outcome
        # handler) is put back here, due shortly (not at once: a bug that always raises must not spin).
        submit_task(self._executor, self._invoke, fn, ev, what=f"the async invocation of {fn.name} ({ev.request_id})",
                    release=lambda: self._settle(fn, ev, lambda tx: invocations.retry_later(
                        tx, ev.id, self.clock.time() + backoff(1), invoked=False)))

    def _continue_writers_chain(self, fn: Function, ev: QueuedEvent, now: float) -> QueuedEvent | None:
        """A bucket event whose file an invocation wrote continues that invocation's chain (see
        `runtime/running.py`): its trace is replaced, for good. None: its writer's report may still be
        on its way, and the event is put back until it must have arrived (a few milliseconds)."""
        writers = self.functions.recent.writers(ev.request_id, now)
        if writers.waiting:
            self._settle(fn, ev, lambda tx: invocations.retry_later(tx, ev.id, writers.until, invoked=False))
            return None
        parent = longest_chain(list(writers.traces), fn.name)
        if parent is None:
            return ev
        trace = for_invocation(parent, fn.name, now)
        self.store.write(lambda tx: invocations.set_trace(tx, ev.id, trace))
        return replace(ev, trace=trace)

    def _invoke(self, fn: Function, ev: QueuedEvent) -> None:
        try:
            result = self.functions.invoke(fn.name, ev.payload, request_id=ev.request_id, trace_id=ev.trace)
        except TooManyRequests:
            self._on_throttle(fn, ev)
        except (ShuttingDown, FunctionNotFound):
            self._settle(fn, ev, lambda tx: invocations.release(tx, [ev.id]))
        except Exception:
            log.exception("the async invocation of %s (%s) is put back to run again: invoking it failed", fn.name,
                          ev.request_id)
            self._settle(fn, ev, lambda tx: invocations.release(tx, [ev.id]))
        else:
            if self._abandon:  # killed by a forced stop: not the function's fault, run it again next time
                self._settle(fn, ev, lambda tx: invocations.release(tx, [ev.id]))
                return
            self._on_result(fn, ev, result)

    def _settle(self, fn: Function, ev: QueuedEvent, apply: Callable) -> None:
        try:
            done = self.store.write(apply)
        except sqlite3.OperationalError as e:  # the store (a full disk): the outcome waits to be committed
            with self._lock:
                self._unsettled.append((fn, ev, apply))
            self._health.failing("dispatcher", e)
            self.wake()
            return  # (its claim still counts: the slot is taken until the outcome is committed)
        except Exception:  # never leave the event leased with nobody to settle it
            log.exception("the async invocation of %s (%s) is put back to run again: committing its outcome failed",
                          fn.name, ev.request_id)
            self._release(ev)
            done = None
        self._settled(fn, done)

    def _release(self, ev: QueuedEvent) -> None:
        try:
            self.store.write(lambda tx: invocations.release(tx, [ev.id]))
        except Exception:  # the store itself fails: the lease runs out, then it runs again
            log.exception("the async invocation %s runs again when its lease runs out: putting it back failed",
                          ev.request_id)

    def _settled(self, fn: Function, done: object) -> None:
        """`done`: what the settling transaction returned (an outcome's deliveries, to announce)."""
        with self._lock:
            self._claimed[fn.name] = self._claimed.get(fn.name, 1) - 1
        self.deliverer.committed(done if isinstance(done, list) else ())
        self.wake()

    def _commit_unsettled(self) -> None:
        """Outcomes a failed commit left in memory, in order; raises (the round fails, and backs off)
        while the store still cannot take them."""
        with self._lock:
            held, self._unsettled = self._unsettled, []
        for i, (fn, ev, apply) in enumerate(held):
            done = None
            try:
                done = self.store.write(apply)
            except sqlite3.OperationalError:
                with self._lock:
                    self._unsettled[:0] = held[i:]
                raise
            except Exception:
                log.exception("the async invocation of %s (%s) is put back to run again: committing its outcome "
                              "failed", fn.name, ev.request_id)
                self._release(ev)
            self._settled(fn, done)

    # -- outcomes -------------------------------------------------------------------------------------

    def _on_result(self, fn: Function, ev: QueuedEvent, result: InvokeResult) -> None:
        now = self.clock.time()
        cfg = fn.async_config
        if result.outcome is Outcome.success:
            self._settle(fn, ev, lambda tx: self.outcomes.succeed(tx, fn, ev, result, now))
            return
        decision = after_function_error(cfg, ev.errors + 1, ev.enqueued_at, now)
        attempt, attempts = ev.errors + 1, cfg.maximum_retry_attempts + 1
        if isinstance(decision, RetryAt):
            self._note(fn, ev, f"attempt {attempt} of {attempts} failed ({result.error_type}); "
                               f"retrying in {decision.due_at - now:.0f}s", now)
            self._settle(fn, ev, lambda tx: invocations.retry_later(
                tx, ev.id, decision.due_at, invoked=True, error=result.error_type, response=result.payload))
            return
        failed = replace(ev, invocations=ev.invocations + 1, errors=ev.errors + 1, last_error=result.error_type,
                         last_response=result.payload)
        self._settle(fn, ev, lambda tx: self.outcomes.fail(tx, fn, failed, decision.condition, result.payload, now))

    def _on_throttle(self, fn: Function, ev: QueuedEvent) -> None:
        now = self.clock.time()
        decision = after_throttle(fn.async_config, ev.throttles + 1, ev.enqueued_at, now)
        if isinstance(decision, RetryAt):
            self._settle(fn, ev, lambda tx: invocations.retry_later(tx, ev.id, decision.due_at, invoked=False,
                                                               throttled=True))
        else:
            self._settle(fn, ev, lambda tx: self.outcomes.fail(tx, fn, ev, decision.condition, ev.last_response, now))

    def _note(self, fn: Function, ev: QueuedEvent, message: str, now: float) -> None:
        """A line in the function's log about the async event's fate (AWS shows this only in metrics)."""
        self.functions.logbook.note(fn.name, f"async {message}", ev.request_id, now)

    # -- stopping -------------------------------------------------------------------------------------

    def stop_claiming(self) -> None:
        """Graceful stop, first stage: start nothing new; running invocations still settle."""
        self._claiming = False

    def abandon(self) -> None:
        """Forced stop: invocations that end now are put back for the next start, not counted."""
        self._claiming = False
        self._abandon = True

    def close(self) -> None:
        self.loop.stop()
        self._executor.shutdown(wait=True)
        self.outbox.stop()  # (files still to be written stay in the store: written at the next start)
        with self._lock:
            unsettled = len(self._unsettled)
        if unsettled:  # (their leases end with this process: they run again at the next start)
            self._warn(f"{unsettled} async outcome(s) could not be committed (the store cannot be written); "
                       "those events run again at the next start")
