"""Contract tests: each in-memory twin and the real thing it stands for, through the same cases.

A twin earns its place in component tests only while it behaves as the real one does where the
code under test can see it:
- `FakeEnvironment` vs a real `Worker` process, through `Functions` and `FunctionPool`, on both
  entries (the blocking one, and the event-loop one the HTTP faces use);
- the recording `FakeScheduler` vs APScheduler's scheduler as lambdad configures it, through the
  schedule service;
- `InlineExecutor` (and the pool-like one of the fault tests) vs a `ThreadPoolExecutor`, through
  `tasks.submit`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lambdad import tasks
from lambdad.clock import SYSTEM_CLOCK
from lambdad.logs import LogBook, read_records
from lambdad.manifest.model import Function, Manifest, ScheduleTrigger
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import InvokeRequest, InvokeResult, Outcome, runtime_error
from lambdad.store import Store
from lambdad.triggers.schedules.service import Schedules, new_scheduler
from tests.component.faults import PoolLikeExecutor
from tests.component.test_schedules import FakeScheduler
from tests.component.twins import FakeSpawner, InlineExecutor
from tests.helpers import FIXTURE_FUNCTIONS, FakeClock, wait_for

# -- execution environments -----------------------------------------------------------------------------

#: Short, so that the timeout case is quick on a real worker (the manifest's minimum is 1 s).
TIMEOUT_S = 0.3


def behave(req: InvokeRequest) -> tuple[Outcome, bytes]:
    """The twin's script: what `tests/fixtures/functions/behave.py` does with the same events."""
    event = json.loads(req.payload)
    action, rid = event.get("action", "echo"), req.request_id
    if action == "raise":
        return Outcome.error, json.dumps({"errorMessage": event["message"], "errorType": "ValueError",
                                          "requestId": rid, "stackTrace": []}).encode()
    if action == "sleep":
        return Outcome.timeout, runtime_error("Sandbox.Timedout", rid, f"Task timed out after {TIMEOUT_S:.2f} seconds")
    if action == "exit":
        return Outcome.crashed, runtime_error("Runtime.ExitError", rid,
                                              f"Runtime exited with error: exit status {event['code']}")
    return Outcome.success, json.dumps({"event": event}).encode()


class Runtime:
    """`Functions` over one kind of environment: the twin, or real worker processes."""

    def __init__(self, tmp_path: Path, kind: str) -> None:
        fn = Function(name="f", handler="behave.handler", code=FIXTURE_FUNCTIONS, python=sys.executable,
                      timeout_s=TIMEOUT_S, memory_mb=128)
        manifest = Manifest(file=tmp_path / "lambdad.yaml", concurrency=4, functions={"f": fn})
        self.kind = kind
        self.spawner = FakeSpawner(behave) if kind == "twin" else None
        self.functions = Functions(manifest, LogBook(tmp_path / "logs"), SYSTEM_CLOCK,
                                   {"PATH": os.environ["PATH"]}, spawn_override=self.spawner)
        self._executor = ThreadPoolExecutor(2)

    def call(self, entry: str, **event: object) -> InvokeResult:
        payload = json.dumps(event).encode()
        if entry == "sync":
            return self.functions.invoke("f", payload)
        return asyncio.run(self.functions.invoke_async("f", payload, self._executor))

    @property
    def cold_starts(self) -> int:
        return self.functions.pool("f").cold_starts

    def log(self) -> list[str]:
        self.functions.flush_logs()
        return [r.message for r in read_records(self.functions.logbook.folder, "f")]

    def close(self) -> None:
        self.functions.close()
        self._executor.shutdown()


@pytest.fixture(params=["twin", "worker"])
def runtime(request, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path, request.param)
    yield rt
    rt.close()


ENTRIES = ["sync", "async"]


def body(result: InvokeResult) -> dict:
    return json.loads(result.payload)


@pytest.mark.parametrize("entry", ENTRIES)
def test_success_keeps_the_environment_warm(runtime: Runtime, entry: str):
    first, second = runtime.call(entry, n=1), runtime.call(entry, n=2)
    assert (first.outcome, first.function_error, first.error_type) == (Outcome.success, None, None)
    assert body(first)["event"] == {"n": 1} and body(second)["event"] == {"n": 2}
    assert runtime.cold_starts == 1
    assert f"END RequestId: {second.request_id}" in runtime.log()


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_function_error_is_unhandled_and_keeps_the_environment(runtime: Runtime, entry: str):
    runtime.call(entry)  # warm: the async entry now drives the environment from the event loop
    result = runtime.call(entry, action="raise", message="boom")
    assert (result.outcome, result.function_error, result.error_type) == (Outcome.error, "Unhandled", "ValueError")
    assert body(result)["errorMessage"] == "boom" and body(result)["requestId"] == result.request_id
    assert runtime.call(entry).outcome is Outcome.success
    assert runtime.cold_starts == 1


LOST = [  # (event, outcome, error type, what the error message says after "Error: ")
    ({"action": "sleep", "seconds": 30}, Outcome.timeout, "Sandbox.Timedout", "Task timed out after 0.30 seconds"),
    ({"action": "exit", "code": 3}, Outcome.crashed, "Runtime.ExitError", "Runtime exited with error: exit status 3"),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize(("event", "outcome", "error_type", "detail"), LOST, ids=["timeout", "crash"])
def test_a_lost_environment_is_an_unhandled_error_and_the_next_call_is_a_cold_start(
    runtime: Runtime, entry: str, event: dict, outcome: Outcome, error_type: str, detail: str
):
    runtime.call(entry)
    result = runtime.call(entry, **event)
    assert (result.outcome, result.function_error, result.error_type) == (outcome, "Unhandled", error_type)
    assert body(result)["errorMessage"] == f"RequestId: {result.request_id} Error: {detail}"
    assert runtime.call(entry).outcome is Outcome.success
    assert runtime.cold_starts == 2


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_recycle_after_an_error_makes_the_next_call_a_cold_start(runtime: Runtime, entry: str):
    runtime.call(entry)
    assert runtime.call(entry, action="raise", message="boom").outcome is Outcome.error
    assert runtime.functions.recycle(["f"]) == 1  # the warm environment that served the error
    assert runtime.call(entry).outcome is Outcome.success
    assert runtime.cold_starts == 2 and runtime.functions.pool("f").idle == 1


def test_a_forced_stop_ends_a_running_invocation_as_a_runtime_exit_error(runtime: Runtime, tmp_path: Path):
    if runtime.spawner is not None:  # the twin waits on its gate where the worker waits on a file
        runtime.spawner.gate = threading.Event()
    results: list[InvokeResult] = []
    thread = threading.Thread(target=lambda: results.append(runtime.call("sync", action="wait_file",
                                                                          path=str(tmp_path / "never"))))
    thread.start()
    wait_for(lambda: runtime.functions.pool("f").in_flight and runtime.functions.pool("f").worker_pids(),
             what="the invocation to run")
    runtime.functions.kill_running()
    thread.join(10)
    assert results[0].outcome is Outcome.crashed and results[0].error_type == "Runtime.ExitError"


# -- schedulers -------------------------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, 9, 59, 30, tzinfo=UTC).timestamp()
#: Rules whose next fire time stays the same for a week (the real scheduler computes it from the real
#: time): a weekly rate from the rule's creation, and a yearly cron.
WEEKLY = ScheduleTrigger("weekly", "rate(7 days)")
YEARLY = ScheduleTrigger("yearly", "cron(0 12 1 1 ? *)")


class Schedulers:
    """The schedule service over one scheduler; what the service asked of it, read back the same way."""

    def __init__(self, tmp_path: Path, kind: str, *triggers: ScheduleTrigger) -> None:
        self.scheduler = FakeScheduler() if kind == "twin" else new_scheduler()
        self.kind = kind
        self.store = Store(":memory:")
        self.service = Schedules(self._manifest(tmp_path, *triggers), self.store, FakeClock(start=T0),
                                 lambda: None, self.scheduler)
        self.tmp_path = tmp_path

    @staticmethod
    def _manifest(tmp_path: Path, *triggers: ScheduleTrigger) -> Manifest:
        fn = Function("tick", "a.h", tmp_path, "python3", events=triggers)
        return Manifest(tmp_path / "lambdad.yaml", functions={"tick": fn})

    def job_ids(self) -> set[str]:
        if isinstance(self.scheduler, FakeScheduler):
            return set(self.scheduler.jobs)
        return {job.id for job in self.scheduler.get_jobs()}

    def next_fire(self, job_id: str) -> datetime:
        if isinstance(self.scheduler, FakeScheduler):
            _, trigger, _ = self.scheduler.jobs[job_id]
            return trigger.get_next_fire_time(None, datetime.now(UTC))
        return self.scheduler.get_job(job_id).next_run_time

    def job_call(self, job_id: str) -> tuple[Callable, tuple]:
        if isinstance(self.scheduler, FakeScheduler):
            func, _, kwargs = self.scheduler.jobs[job_id]
            return func, kwargs.get("args", ())
        job = self.scheduler.get_job(job_id)
        return job.func, tuple(job.args)

    def close(self) -> None:
        self.service.stop()
        self.store.close()


@pytest.fixture(params=["twin", "apscheduler"])
def scheduler_kind(request) -> str:
    return request.param


def schedulers(tmp_path: Path, kind: str, *triggers: ScheduleTrigger) -> Schedulers:
    return Schedulers(tmp_path, kind, *triggers)


def test_a_rate_and_a_cron_rule_are_jobs_with_the_same_next_fire_time(tmp_path: Path, scheduler_kind: str):
    s = schedulers(tmp_path, scheduler_kind, WEEKLY, YEARLY)
    try:
        s.service.start()
        assert s.job_ids() == {"weekly", "yearly"}
        now = datetime.now(UTC)
        weekly = s.next_fire("weekly")
        assert now < weekly and (weekly - datetime.fromtimestamp(T0, UTC)).total_seconds() % (7 * 86400) == 0
        noon = datetime(now.year, 1, 1, 12, tzinfo=UTC)
        assert s.next_fire("yearly") == (noon if now < noon else noon.replace(year=now.year + 1))
        func, args = s.job_call("weekly")
        assert args == ("weekly",)
        func(*args)  # what the scheduler calls at a fire time queues the rule's event
        with s.store.reading() as tx:
            assert tx.execute("SELECT function, source FROM events").fetchall() == [("tick", "schedule")]
    finally:
        s.close()


def test_a_reload_removes_adds_and_replaces_jobs(tmp_path: Path, scheduler_kind: str):
    s = schedulers(tmp_path, scheduler_kind, WEEKLY, YEARLY)
    try:
        s.service.start()
        daily = ScheduleTrigger("weekly", "rate(1 day)")  # same name, new expression: replaced
        hourly = ScheduleTrigger("hourly", "cron(0 * * * ? *)")
        s.service.apply(Schedulers._manifest(tmp_path, daily, hourly), added=["hourly"], removed=["yearly"],
                        changed=["weekly"])
        assert s.job_ids() == {"weekly", "hourly"}
        weekly = s.next_fire("weekly")
        assert (weekly - datetime.now(UTC)).total_seconds() <= 86400
        s.service.apply(Schedulers._manifest(tmp_path, daily), added=[], removed=["hourly"], changed=[])
        assert s.job_ids() == {"weekly"}
    finally:
        s.close()


# -- executors --------------------------------------------------------------------------------------------


class Released:
    def __init__(self) -> None:
        self.count = 0
        self.done = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.done.set()


def fails() -> None:
    raise ValueError("a bug in a task")


@pytest.fixture(params=["inline", "pool-like", "thread-pool"])
def executor(request) -> Iterator[Executor]:
    kinds = {"inline": InlineExecutor, "pool-like": PoolLikeExecutor, "thread-pool": lambda: ThreadPoolExecutor(1)}
    ex = kinds[request.param]()
    yield ex
    ex.shutdown()


def test_a_task_that_raises_is_logged_and_released(executor: Executor, caplog):
    released = Released()
    with caplog.at_level(logging.ERROR, logger="lambdad.tasks"):
        assert tasks.submit(executor, fails, what="the batch", release=released) is True
        assert released.done.wait(10)
        wait_for(lambda: caplog.records, what="the failure to be logged")
    (record,) = caplog.records
    assert record.getMessage() == "the batch is put back to run again: handling it failed"
    assert isinstance(record.exc_info[1], ValueError) and str(record.exc_info[1]) == "a bug in a task"
    assert released.count == 1


def test_a_task_that_finishes_is_not_released(executor: Executor, caplog):
    released, ran = Released(), threading.Event()
    with caplog.at_level(logging.ERROR, logger="lambdad.tasks"):
        assert tasks.submit(executor, ran.set, what="the batch", release=released) is True
        assert ran.wait(10)
        executor.shutdown(wait=True)
    assert released.count == 0 and not caplog.records


@pytest.mark.parametrize("make", [PoolLikeExecutor, lambda: ThreadPoolExecutor(1)], ids=["pool-like", "thread-pool"])
def test_a_task_refused_after_shutdown_is_released(make: Callable[[], Executor]):
    """(The inline twin never refuses work: a component test's executor lives as long as the test.)"""
    released, executor = Released(), make()
    executor.shutdown()
    assert tasks.submit(executor, fails, what="the batch", release=released) is False
    assert released.count == 1
