"""All of a manifest's functions, ready to invoke by name: pools, zygotes and concurrency limits."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import replace

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.errors import FunctionNotFound, InvalidRequestContent, LambdadError, RequestTooLarge
from lambdad.ids import new_request_id
from lambdad.logs import LogBook
from lambdad.manifest.diff import ManifestDiff
from lambdad.manifest.model import Function, Manifest
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES, InvokeRequest, InvokeResult
from lambdad.runtime.launcher import LaunchError, Launchers
from lambdad.runtime.pool import ACCOUNT_LIMIT, RESERVED_LIMIT, Environment, FunctionPool, Limiter, Spawn
from lambdad.runtime.running import RecentInvocations
from lambdad.runtime.worker import spawn_worker
from lambdad.tracing import for_invocation

log = logging.getLogger(__name__)


class ShuttingDown(LambdadError):
    CODE = "ServiceException"
    STATUS = 503

    def __init__(self) -> None:
        super().__init__("lambdad is shutting down")


def check_payload(payload: bytes, limit: int = MAX_SYNC_PAYLOAD_BYTES) -> bytes:
    """The payload as a handler will receive it: empty means `{}`, anything else must be JSON.

    Raises:
        RequestTooLarge: past Lambda's limit for the invocation type.
        InvalidRequestContent: not JSON.
    """
    if len(payload) > limit:
        raise RequestTooLarge(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if not payload.strip():
        return b"{}"
    try:
        json.loads(payload)
    except ValueError as e:
        raise InvalidRequestContent(f"Could not parse request body into json: {e}") from None
    except RecursionError:  # nested deeper than the parser goes (Lambda refuses those too)
        raise InvalidRequestContent("Could not parse request body into json: it is nested too deeply") from None
    return payload


class Functions:
    """Owns its pools, zygotes and the LogBook it is given; `close()` shuts all of them down.

    `spawn_override` replaces the zygote as the source of new environments (tests use in-memory twins).
    """

    def __init__(
        self,
        manifest: Manifest,
        logbook: LogBook,
        clock: Clock = SYSTEM_CLOCK,
        inherited_env: Mapping[str, str] | None = None,
        spawn_override: Spawn | None = None,
    ) -> None:
        inherited = dict(os.environ if inherited_env is None else inherited_env)
        self.manifest = manifest
        self.logbook = logbook
        self._clock = clock
        zygote_env = {k: inherited[k] for k in ("PATH", "HOME", "LANG", "LC_ALL") if k in inherited}
        self._launchers = Launchers(zygote_env)
        self._inherited = inherited
        self._spawn = spawn_override or self._spawn_from_zygote
        self._account = Limiter(self._shared_capacity(manifest), ACCOUNT_LIMIT)
        self._pools: dict[str, FunctionPool] = {fn.name: self._new_pool(fn) for fn in manifest.functions.values()}
        self._retired: list[FunctionPool] = []
        self._accepting = True
        self._in_flight = 0
        self._idle = threading.Condition(threading.Lock())
        #: Which invocations ran when, their trace headers and the files they wrote (bucket events continue
        #: the chain of the invocation that wrote their file).
        self.recent = RecentInvocations()

    @staticmethod
    def _shared_capacity(manifest: Manifest) -> int:
        """Reservations come out of the shared pool, as they come out of AWS's account limit."""
        reserved = sum(fn.reserved_concurrency or 0 for fn in manifest.functions.values())
        return max(0, manifest.concurrency - reserved)

    def _spawn_from_zygote(self, fn: Function) -> Environment:
        zygote = self._launchers.get(fn.python)
        return spawn_worker(zygote, fn, self.manifest.region, self._inherited, self._clock)

    def _new_pool(self, fn: Function, limiter: Limiter | None = None) -> FunctionPool:
        if limiter is None:
            limiter = self._account if fn.reserved_concurrency is None else Limiter(fn.reserved_concurrency,
                                                                                   RESERVED_LIMIT)
        return FunctionPool(fn, self._spawn, self.logbook.function(fn.name), limiter, self._clock)

    def apply(self, manifest: Manifest, diff: ManifestDiff) -> None:
        """A reload: new pools for added and changed functions; removed and replaced pools retire once
        their running invocations finish (they finish on the configuration they started with)."""
        self.manifest = manifest
        self._account.capacity = self._shared_capacity(manifest)
        for name in diff.functions_removed:
            self._retire(self._pools.pop(name))
        for name in diff.functions_recycled:
            old, fn = self._pools[name], manifest.functions[name]
            same_limit = fn.reserved_concurrency == old.fn.reserved_concurrency
            self._pools[name] = self._new_pool(fn, old.limiter if same_limit else None)
            self._retire(old)
        for name in diff.functions_added:
            self._pools[name] = self._new_pool(manifest.functions[name])
        for name in diff.functions_updated:
            self._pools[name].fn = manifest.functions[name]  # triggers or async settings: workers stay warm

    def _retire(self, pool: FunctionPool) -> None:
        """Kept while anything may still run in it (a caller may have looked it up just before), so
        that a forced stop reaches it; forgotten at a later reload once idle."""
        pool.retire()
        self._retired = [p for p in self._retired if p.in_flight] + [pool]

    def _all_pools(self) -> list[FunctionPool]:
        """Current pools and retired ones whose invocations still run (a stop must reach them too)."""
        return [*self._pools.values(), *self._retired]

    def recycle(self, names: list[str]) -> int:
        """Their code changed: the next invocation of each is a cold start on the new code."""
        return sum(self._pools[n].recycle() for n in names if n in self._pools)

    def python_version(self, name: str) -> str | None:
        """The Python version a function runs on (`3.11.7`), once its interpreter has started."""
        fn = self.manifest.functions.get(name)
        return None if fn is None else self._launchers.get(fn.python).python_version

    def pool(self, name: str) -> FunctionPool:
        try:
            return self._pools[name]
        except KeyError:
            raise FunctionNotFound(name, list(self._pools)) from None

    @property
    def pools(self) -> Mapping[str, FunctionPool]:
        return self._pools

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        client_context: str | None = None,
        identity: str | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult:
        """Invoke synchronously. Raises FunctionNotFound, TooManyRequests or ShuttingDown.

        `trace_id` is the invocation's own `_X_AMZN_TRACE_ID` (see `tracing.for_invocation`); without
        one the invocation starts a trace of its own.
        """
        pool, req, span = self._begin(name, payload, request_id, invoked_arn, client_context, identity, trace_id)
        try:
            return pool.invoke(req)
        finally:
            self._end(span)

    async def invoke_async(
        self,
        name: str,
        payload: bytes,
        executor: Executor,
        *,
        request_id: str | None = None,
        invoked_arn: str | None = None,
        client_context: str | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult:
        """`invoke` from an event loop; what has to block runs on `executor`."""
        import asyncio

        loop = asyncio.get_running_loop()
        pool, req, span = self._begin(name, payload, request_id, invoked_arn, client_context, None, trace_id)
        try:
            return await pool.invoke_async(req, lambda fn, *args: loop.run_in_executor(executor, fn, *args))
        finally:
            self._end(span)

    def _begin(self, name: str, payload: bytes, request_id: str | None, invoked_arn: str | None,
               client_context: str | None, identity: str | None,
               trace_id: str | None) -> tuple[FunctionPool, InvokeRequest, int]:
        """What both entries do first: find the pool, build the request, count it in, open its span."""
        pool = self.pool(name)
        req = self._request(name, payload, request_id, invoked_arn, client_context, identity, trace_id)
        self._enter()
        span = self.recent.begin(name, req.trace_id or "", self._clock.time())
        return pool, replace(req, on_write=self._reporter(span)), span

    def _end(self, span: int) -> None:
        self.recent.end(span, self._clock.time())
        self._leave()

    def _reporter(self, span: int) -> Callable[..., None]:
        """What the environment calls with each path the invocation writes, as it writes it (and when
        the worker saw it: its report may be read after the bucket saw the file)."""
        def on_write(path: str, at: float | None = None) -> None:
            self.recent.wrote(span, path, self._clock.time() if at is None else at)
        return on_write

    def _request(self, name: str, payload: bytes, request_id: str | None, invoked_arn: str | None,
                 client_context: str | None, identity: str | None, trace_id: str | None) -> InvokeRequest:
        return InvokeRequest(
            request_id=request_id or new_request_id(),
            payload=payload,
            invoked_arn=invoked_arn or self.manifest.function_arn(name),
            client_context=client_context,
            identity=identity,
            trace_id=trace_id or for_invocation(None, name, self._clock.time()),
        )

    def _enter(self) -> None:
        with self._idle:
            if not self._accepting:
                raise ShuttingDown()
            self._in_flight += 1

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def start_runtimes(self) -> list[str]:
        """Start every interpreter's zygote now, so the first cold start only pays for a fork."""
        problems = []
        for python in sorted({fn.python for fn in self.manifest.functions.values()}):
            try:
                self._launchers.get(python).start()
            except LaunchError as e:
                problems.append(str(e))
        return problems

    def reap_idle(self, now_mono: float) -> float:
        """Housekeeping: shut down idle environments. Returns seconds until it is due again.
        Keep-alive is measured on monotonic time: a wall-clock jump must not end or keep environments."""
        return min((pool.reap_idle(now_mono) for pool in self._pools.values()), default=60.0)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def stop_accepting(self) -> None:
        with self._idle:
            self._accepting = False

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no invocation runs, at most `timeout_s`; True if that happened."""
        with self._idle:  # (a real wait: invocations end on real time, whatever the clock)
            return self._idle.wait_for(lambda: not self._in_flight, timeout_s)

    def kill_running(self) -> None:
        """Force: kill every running environment; their invocations end as Runtime.ExitError."""
        self.stop_accepting()
        for pool in self._all_pools():
            pool.kill_busy()
        self.wait_idle(5.0)

    def close(self, force: bool = False) -> None:
        """Shut every environment down; with `force`, kill running ones instead of waiting."""
        self.stop_accepting()
        if force:
            self.kill_running()
        for pool in self._all_pools():
            pool.close_idle()
        self._launchers.close()
        self.logbook.close()

    def flush_logs(self) -> None:
        """Wait until every log record handed over so far is written."""
        self.logbook.flush()
