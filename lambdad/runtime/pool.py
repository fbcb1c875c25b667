"""A function's pool of warm execution environments, and the concurrency limits that gate them.

Like Lambda, an environment serves one invocation at a time; a warm one is reused (most recently
used first), a missing one is forked (a cold start), and one idle for longer than the function's
keep-alive is shut down. A synchronous call that finds the limit reached is refused at once with
TooManyRequestsException: Lambda never queues those.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from lambdad.clock import Clock
from lambdad.errors import TooManyRequests
from lambdad.logs import FunctionLog, InvocationLog
from lambdad.manifest.model import Function
from lambdad.runtime.environment import log_stream_name, worker_environment
from lambdad.runtime.invocation import InvokeRequest, InvokeResult, Outcome, runtime_error
from lambdad.runtime.launcher import LaunchError, Zygote
from lambdad.runtime.worker import Limits, Worker

log = logging.getLogger(__name__)

#: Throttle reasons, as Lambda names them in TooManyRequestsException.
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


class Limiter:
    """A counting gate that never blocks: `try_acquire` either takes a slot or says no."""

    def __init__(self, capacity: int, reason: str) -> None:
        self.capacity = capacity
        self.reason = reason
        self._used = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._used >= self.capacity:
                return False
            self._used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._used -= 1

    @property
    def in_use(self) -> int:
        return self._used


@dataclass(frozen=True)
class PoolContext:
    """What a pool needs beyond its function: where it runs and what it inherits."""

    region: str
    inherited_env: Mapping[str, str]


class FunctionPool:
    def __init__(
        self,
        fn: Function,
        ctx: PoolContext,
        zygote: Zygote,
        flog: FunctionLog,
        limiter: Limiter,
        clock: Clock,
    ) -> None:
        self.fn = fn
        self.ctx = ctx
        self.limiter = limiter
        self._zygote = zygote
        self._flog = flog
        self._clock = clock
        self._limits = Limits(timeout_s=fn.timeout_s, memory_mb=fn.memory_mb)
        self._idle: list[tuple[Worker, float]] = []  #: (worker, idle since), most recent last
        self._busy: set[Worker] = set()
        self._lock = threading.Lock()
        self.cold_starts = 0

    def invoke(self, req: InvokeRequest) -> InvokeResult:
        """Run `req` on a warm environment, or a new one. Raises TooManyRequests when at the limit."""
        if not self.limiter.try_acquire():
            raise TooManyRequests(self.limiter.reason)
        try:
            worker = self._checkout()
            ilog = InvocationLog(self._flog, req.request_id, self._clock)
            if worker is None:
                try:
                    worker = self._spawn()
                except LaunchError as e:
                    ilog.line(f"[ERROR] Runtime.ExitError: {e}")
                    ilog.flush()
                    body = runtime_error("Runtime.ExitError", req.request_id, f"Runtime exited with error: {e}")
                    return InvokeResult(req.request_id, Outcome.crashed, body, "Runtime.ExitError",
                                        log_tail=ilog.tail())
            with self._lock:
                self._busy.add(worker)
            try:
                result = worker.invoke(req, self._limits, ilog)
            finally:
                with self._lock:
                    self._busy.discard(worker)
            self._checkin(worker)
            return result
        finally:
            self.limiter.release()

    def _checkout(self) -> Worker | None:
        with self._lock:
            return self._idle.pop()[0] if self._idle else None

    def _checkin(self, worker: Worker) -> None:
        if worker.alive:
            with self._lock:
                self._idle.append((worker, self._clock.monotonic()))

    def _spawn(self) -> Worker:
        self._zygote.start()
        stream = log_stream_name(self._clock.time())
        env = worker_environment(
            self.fn, self.ctx.region, stream, self._zygote.python_version or "3", self.ctx.inherited_env
        )
        started = time.monotonic()
        spawned = self._zygote.spawn({"env": env, "code": str(self.fn.code), "handler": self.fn.handler})
        self.cold_starts += 1
        log.debug("cold start of %s: worker %d", self.fn.name, spawned.pid)
        return Worker(spawned, self._zygote, stream, started)

    # -- housekeeping ---------------------------------------------------------------------------------

    def reap_idle(self, now: float) -> float:
        """Shut down environments idle past the keep-alive; return seconds until the next one is due."""
        keep = self.fn.keep_alive_s
        with self._lock:
            expired = [w for w, since in self._idle if now - since >= keep]
            self._idle = [(w, since) for w, since in self._idle if now - since < keep]
            next_due = min((since + keep - now for _, since in self._idle), default=keep)
        for worker in expired:
            log.debug("%s: environment %d idle for %.0fs, shutting it down", self.fn.name, worker.pid, keep)
            worker.close()
        return next_due

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w, _ in self._idle] + [w.pid for w in self._busy]

    def close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker, _ in idle:
            worker.close()

    def kill_busy(self) -> None:
        """Force: SIGKILL running environments; their invocations end as Runtime.ExitError."""
        with self._lock:
            busy = list(self._busy)
        for worker in busy:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
