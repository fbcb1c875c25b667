"""In-memory twins of execution environments: what a pool needs, with no process behind it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from typing import Any

from lambdad.logs import InvocationLog
from lambdad.manifest.model import Function
from lambdad.runtime.exchange import error_type_of
from lambdad.runtime.invocation import InvokeRequest, InvokeResult, Limits, Outcome
from lambdad.runtime.launcher import LaunchError

_pids = itertools.count(10_000)

#: What a twin does with an invocation: return an outcome (and payload), optionally waiting first.
Script = Callable[[InvokeRequest], tuple[Outcome, bytes]]


def echo(req: InvokeRequest) -> tuple[Outcome, bytes]:
    return Outcome.success, req.payload


class FakeEnvironment:
    """The `Environment` protocol in memory: a script decides each outcome. Like a worker, it is
    `ready` once its first invocation has loaded the handler, and the pool then drives it from the
    event loop (`invoke_ready`)."""

    def __init__(self, script: Script, gate: threading.Event | None = None, logs: bool = True) -> None:
        self.pid = next(_pids)
        self.alive = True
        self.initialised = False
        self.invocations: list[str] = []
        self.closed = False
        self.killed = False
        self._script = script
        self._gate = gate
        self._logs = logs
        self.entered = threading.Event()

    @property
    def ready(self) -> bool:
        return self.initialised and self.alive

    def invoke(self, req: InvokeRequest, limits: Limits, log: InvocationLog) -> InvokeResult:
        self._enter(req)
        if self._gate is not None:
            self._gate.wait(10)
        return self._serve(req, log)

    async def invoke_ready(self, req: InvokeRequest, limits: Limits, log: InvocationLog,
                           run_blocking: Callable[..., Awaitable[Any]]) -> InvokeResult:
        self._enter(req)
        if self._gate is not None:  # waits as a worker's reply does: off the loop's thread
            await run_blocking(self._gate.wait, 10)
        return self._serve(req, log)

    def _enter(self, req: InvokeRequest) -> None:
        self.invocations.append(req.request_id)
        self.initialised = True
        self.entered.set()

    def _serve(self, req: InvokeRequest, log: InvocationLog) -> InvokeResult:
        if self.killed:
            self.alive = False
            return InvokeResult(req.request_id, Outcome.crashed, b"{}", "Runtime.ExitError")
        outcome, payload, *written = self._script(req)  # (a script may add the paths it wrote)
        for path in written[0] if written else ():  # reported as the real worker reports them
            if req.on_write is not None:
                req.on_write(path)
        self.alive = outcome.keeps_environment
        if self._logs:
            log.line(f"END RequestId: {req.request_id}")
            log.flush()
        error_type = None if outcome is Outcome.success else error_type_of(payload) or "X"
        return InvokeResult(req.request_id, outcome, payload, error_type)

    def close(self, grace_s: float = 2.0, log: InvocationLog | None = None) -> None:
        self.alive = False
        self.closed = True

    def kill(self) -> None:
        self.killed = True
        if self._gate is not None:
            self._gate.set()


class FakeSpawner:
    """Counts cold starts; can be told to fail like an interpreter that does not start."""

    def __init__(self, script: Script = echo, gate: threading.Event | None = None, logs: bool = True) -> None:
        self.script = script
        self.gate = gate
        self.logs = logs
        self.spawned: list[FakeEnvironment] = []
        self.fail_with: str | None = None

    def __call__(self, fn: Function) -> FakeEnvironment:
        if self.fail_with:
            raise LaunchError(self.fail_with)
        env = FakeEnvironment(self.script, self.gate, self.logs)
        self.spawned.append(env)
        return env


class InlineExecutor(Executor):
    """Runs each job at once, on the caller's thread: a component test steps through it. What a job
    raises is kept in its future, as a thread pool keeps it, so the code under test handles it as it
    would in the daemon (`tasks.submit` logs it and puts the work back)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # (a pool's worker thread keeps what the job raised)
            future.set_exception(e)
        return future

    def shutdown(self, wait=True, **kwargs):
        pass


class DeferredExecutor(InlineExecutor):
    """Runs nothing until told: a job still waiting (or running) while the test goes on."""

    def __init__(self) -> None:
        self.jobs: list = []

    def submit(self, fn, /, *args, **kwargs):
        self.jobs.append((fn, args, kwargs))
        return Future()

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for fn, args, kwargs in jobs:
            fn(*args, **kwargs)
