"""A function's pool of warm execution environments, and the concurrency limits that gate them.

Like Lambda, an environment serves one invocation at a time; a warm one is reused (most recently
used first), a missing one is forked (a cold start), and one idle for longer than the function's
keep-alive is shut down. A synchronous call that finds the limit reached is refused at once with
TooManyRequestsException: Lambda never queues those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lambdad.clock import Clock
from lambdad.errors import TooManyRequests
from lambdad.logs import FunctionLog, InvocationLog
from lambdad.manifest.model import Function
from lambdad.runtime.invocation import InvokeRequest, InvokeResult, Limits, Outcome, runtime_error
from lambdad.runtime.launcher import LaunchError

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


#: Runs a blocking call off the event loop: `await run_blocking(fn, *args)` is `fn(*args)`.
RunBlocking = Callable[..., Awaitable[Any]]


class Environment(Protocol):
    """What a pool needs of an execution environment: a `Worker`, or a test's in-memory twin."""

    pid: int
    alive: bool

    @property
    def ready(self) -> bool:
        """Initialised and warm: `invoke_ready` can serve it from an event loop."""
        ...

    def invoke(self, req: InvokeRequest, limits: Limits, log: InvocationLog) -> InvokeResult:
        """One invocation to its end, blocking the calling thread (a cold start included)."""
        ...

    async def invoke_ready(self, req: InvokeRequest, limits: Limits, log: InvocationLog,
                           run_blocking: RunBlocking) -> InvokeResult:
        """`invoke` on a `ready` environment, waiting on the running event loop; what blocks (ending a
        lost environment) goes to `run_blocking`."""
        ...

    def close(self, grace_s: float = ..., log: InvocationLog | None = ...) -> object: ...

    def kill(self) -> None: ...


#: Starts a new execution environment for a function (a cold start). Raises LaunchError.
Spawn = Callable[[Function], Environment]


class FunctionPool:
    def __init__(self, fn: Function, spawn: Spawn, flog: FunctionLog, limiter: Limiter, clock: Clock) -> None:
        self.fn = fn
        self.limiter = limiter
        self._spawn = spawn
        self._flog = flog
        self._clock = clock
        self._limits = Limits(timeout_s=fn.timeout_s, memory_mb=fn.memory_mb)
        #: (environment, idle since (monotonic), generation of the code it loaded), most recent last
        self._idle: list[tuple[Environment, float, int]] = []
        self._busy: dict[Environment, int] = {}  #: running environment -> generation of its code
        self._active = 0  #: invocations between taking a slot and giving it back (cold starts included)
        self.generation = 0  #: bumped when the function's code changes
        self.retired = False
        self._lock = threading.Lock()
        self.cold_starts = 0

    def invoke(self, req: InvokeRequest) -> InvokeResult:
        """Run `req` on a warm environment, or a new one. Raises TooManyRequests when at the limit."""
        self._acquire()
        try:
            return self._run(req, self._checkout())
        finally:
            self._release()

    async def invoke_async(self, req: InvokeRequest, run_blocking: RunBlocking) -> InvokeResult:
        """`invoke` from an event loop: a ready warm environment is driven from the loop itself; a cold
        start runs through `run_blocking`, as does closing an environment that is not kept."""
        self._acquire()
        try:
            warm = self._checkout()
            if warm is None or not warm[0].ready:
                return await run_blocking(self._run, req, warm)
            env, generation = warm
            self._lend(env, generation)
            try:
                result = await env.invoke_ready(req, self._limits, self._log(req), run_blocking)
            finally:
                self._unlend(env)
            if self._keeps(env, generation):
                self._checkin(env, generation)
            else:  # closing waits for the process: not on the loop
                await run_blocking(self._checkin, env, generation)
            return result
        finally:
            self._release()

    def _acquire(self) -> None:
        if not self.limiter.try_acquire():
            raise TooManyRequests(self.limiter.reason, self.fn.name)
        with self._lock:
            self._active += 1

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
        self.limiter.release()

    def _log(self, req: InvokeRequest) -> InvocationLog:
        return InvocationLog(self._flog, req.request_id, self._clock)

    def _run(self, req: InvokeRequest, warm: tuple[Environment, int] | None) -> InvokeResult:
        """One invocation, in a slot already taken: on `warm`, or on a new environment."""
        ilog = self._log(req)
        if warm is None:
            generation = self.generation  # code that changes while it starts makes it stale at once
            try:
                env = self._spawn(self.fn)
            except LaunchError as e:
                return self._launch_failed(req, ilog, e)
            self.cold_starts += 1
        else:
            env, generation = warm
        self._lend(env, generation)
        try:
            result = env.invoke(req, self._limits, ilog)
        finally:
            self._unlend(env)
        self._checkin(env, generation)
        return result

    def _lend(self, env: Environment, generation: int) -> None:
        """Running: a forced stop reaches it (`kill_busy`), a recycle counts it."""
        with self._lock:
            self._busy[env] = generation

    def _unlend(self, env: Environment) -> None:
        with self._lock:
            del self._busy[env]

    def _launch_failed(self, req: InvokeRequest, ilog: InvocationLog, error: LaunchError) -> InvokeResult:
        ilog.line(f"[ERROR] Runtime.ExitError: {error}")
        ilog.flush()
        body = runtime_error("Runtime.ExitError", req.request_id, f"Runtime exited with error: {error}")
        return InvokeResult(req.request_id, Outcome.crashed, body, "Runtime.ExitError", log_tail=ilog.tail())

    def _checkout(self) -> tuple[Environment, int] | None:
        with self._lock:
            if not self._idle:
                return None
            env, _, generation = self._idle.pop()
            return env, generation

    def _keeps(self, env: Environment, generation: int) -> bool:
        return not env.alive or (not self.retired and generation == self.generation)

    def _checkin(self, env: Environment, generation: int) -> None:
        """Back to the warm set, unless the code changed (or the pool retired) while it ran."""
        if not env.alive:
            return
        with self._lock:
            keep = not self.retired and generation == self.generation
            if keep:
                self._idle.append((env, self._clock.monotonic(), generation))
        if not keep:
            env.close()

    def recycle(self) -> int:
        """New code: warm environments end now, running ones when their invocation finishes; the next
        invocation is a cold start. Returns how many environments are affected."""
        with self._lock:
            self.generation += 1
            idle, self._idle = self._idle, []
            running = len(self._busy)
        for env, _, _ in idle:
            env.close()
        return len(idle) + running

    def retire(self) -> None:
        """The function was removed or replaced: running invocations finish here, nothing new starts."""
        self.retired = True
        self.recycle()

    # -- housekeeping ---------------------------------------------------------------------------------

    def reap_idle(self, now_mono: float) -> float:
        """Shut down environments idle past the keep-alive; return seconds until the next one is due."""
        keep = self.fn.keep_alive_s
        with self._lock:
            expired = [env for env, since, _ in self._idle if now_mono - since >= keep]
            self._idle = [entry for entry in self._idle if now_mono - entry[1] < keep]
            next_due = min((since + keep - now_mono for _, since, _ in self._idle), default=keep)
        for env in expired:
            log.debug("%s: environment %d idle for %.0fs, shutting it down", self.fn.name, env.pid, keep)
            env.close()
        return next_due

    @property
    def in_flight(self) -> int:
        """Invocations that hold a slot: running, or starting their environment."""
        return self._active

    @property
    def idle(self) -> int:
        return len(self._idle)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w, _, _ in self._idle] + [w.pid for w in self._busy]

    def close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for env, _, _ in idle:
            env.close()

    def kill_busy(self) -> None:
        """Force: kill running environments; their invocations end as Runtime.ExitError."""
        with self._lock:
            busy = list(self._busy)
        for env in busy:
            env.kill()
