"""All of a manifest's functions, ready to invoke by name: pools, zygotes and concurrency limits."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.errors import FunctionNotFound, InvalidRequestContent, LambdadError, RequestTooLarge
from lambdad.logs import LogBook
from lambdad.manifest.model import Function, Manifest
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES, InvokeRequest, InvokeResult, new_request_id
from lambdad.runtime.launcher import LaunchError, Launchers
from lambdad.runtime.pool import ACCOUNT_LIMIT, RESERVED_LIMIT, Environment, FunctionPool, Limiter, Spawn
from lambdad.runtime.worker import spawn_worker

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
        # Reservations come out of the shared pool, as they come out of AWS's account limit.
        reserved = sum(fn.reserved_concurrency or 0 for fn in manifest.functions.values())
        self._account = Limiter(max(0, manifest.concurrency - reserved), ACCOUNT_LIMIT)

        def spawn_from_zygote(fn: Function) -> Environment:
            return spawn_worker(self._launchers.get(fn.python), fn, manifest.region, inherited, clock.time())

        self._pools: dict[str, FunctionPool] = {}
        for fn in manifest.functions.values():
            limiter = (
                self._account
                if fn.reserved_concurrency is None
                else Limiter(fn.reserved_concurrency, RESERVED_LIMIT)
            )
            spawn = spawn_from_zygote if spawn_override is None else spawn_override
            self._pools[fn.name] = FunctionPool(fn, spawn, logbook.function(fn.name), limiter, clock)
        self._accepting = True
        self._in_flight = 0
        self._idle = threading.Condition(threading.Lock())

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
    ) -> InvokeResult:
        """Invoke synchronously. Raises FunctionNotFound, TooManyRequests or ShuttingDown."""
        pool = self.pool(name)
        req = InvokeRequest(
            request_id=request_id or new_request_id(),
            payload=payload,
            invoked_arn=invoked_arn or self.manifest.function_arn(name),
            client_context=client_context,
            identity=identity,
        )
        with self._idle:
            if not self._accepting:
                raise ShuttingDown()
            self._in_flight += 1
        try:
            return pool.invoke(req)
        finally:
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

    def step(self, now: float) -> float:
        """Housekeeping: shut down idle environments. Returns seconds until it is due again."""
        return min((pool.reap_idle(now) for pool in self._pools.values()), default=60.0)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def stop_accepting(self) -> None:
        with self._idle:
            self._accepting = False

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no invocation runs, at most `timeout_s`; True if that happened."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def kill_running(self) -> None:
        """Force: kill every running environment; their invocations end as Runtime.ExitError."""
        self.stop_accepting()
        for pool in self._pools.values():
            pool.kill_busy()
        self.wait_idle(5.0)

    def close(self, force: bool = False) -> None:
        """Shut every environment down; with `force`, kill running ones instead of waiting."""
        self.stop_accepting()
        if force:
            self.kill_running()
        for pool in self._pools.values():
            pool.close_idle()
        self._launchers.close()
        self.logbook.close()

    def flush_logs(self) -> None:
        """Wait until every log record handed over so far is written."""
        self.logbook.flush()
