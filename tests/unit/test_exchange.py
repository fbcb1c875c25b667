"""The invocation state machine on a fake clock and a scripted channel: every step and ending that
both drivers (polling and the event loop) share, with no process behind it."""

from __future__ import annotations

import json

import pytest

from lambdad.logs import InvocationLog, LogRecord
from lambdad.runtime import exchange
from lambdad.runtime.exchange import Exchange
from lambdad.runtime.invocation import InvokeRequest, Limits, Outcome
from lambdad.runtime.launcher import ExitStatus
from tests.helpers import FakeClock

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
LIMITS = Limits(timeout_s=3.0, memory_mb=128)


class Sink:
    """Stands for a function's log file."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def write(self, records: list[LogRecord]) -> None:
        self.records += records


class Channel:
    """A worker as the machine sees it: frames and output to hand over, what was sent and closed."""

    def __init__(self, clock: FakeClock, initialised: bool = True) -> None:
        self.started_mono = clock.monotonic()
        self.initialised = initialised
        self.invocations = 0
        self.peak_mb = 0
        self.ctrl_open = True
        self.frames: list[tuple[dict, bytes]] = []
        self.output: list[bytes] = []
        self.rss = 20
        self.sent: list[int] = []
        self.closed_with: float | None = None
        self.status: ExitStatus | None = ExitStatus(code=3)

    def send(self, req: InvokeRequest, deadline_ms: int) -> None:
        self.sent.append(deadline_ms)

    def read_frame(self) -> tuple[dict, bytes] | None:
        return self.frames.pop(0) if self.frames else None

    def take_reports(self) -> None:
        pass

    def pump_output(self, log: InvocationLog) -> None:
        lines, self.output = self.output, []
        if lines:
            log.output(lines)

    def flush_partial(self, log: InvocationLog) -> None:
        pass

    def rss_mb(self) -> int:
        self.peak_mb = max(self.peak_mb, self.rss)
        return self.rss

    def close(self, grace_s: float = 2.0, log: InvocationLog | None = None) -> ExitStatus | None:
        self.closed_with = grace_s
        return self.status


class World:
    def __init__(self, initialised: bool = True) -> None:
        self.clock = FakeClock()
        self.channel = Channel(self.clock, initialised)
        self.sink = Sink()
        self.settled = 0
        self.ex = Exchange(self.channel, InvokeRequest(RID, b"{}", "arn"), LIMITS,
                           InvocationLog(self.sink, RID, self.clock), self.clock, on_done=self.on_done)

    def on_done(self) -> None:
        self.settled += 1

    def reply(self, ok: bool = True, body: bytes = b'"hi"', maxrss_kb: int = 30 * 1024) -> None:
        self.channel.frames.append(({"t": "result", "ok": ok, "maxrss_kb": maxrss_kb}, body))
        self.ex.on_reply()

    def lines(self) -> list[str]:
        return [r.message for r in self.sink.records]


def test_a_ready_worker_gets_the_event_at_once_and_its_reply_after_its_output():
    w = World()
    w.ex.begin()
    assert w.channel.sent == [int((w.clock.time() + 3.0) * 1000)]  # the handler's deadline, wall clock
    w.clock.advance(0.25)
    w.channel.output = [b"printed"]
    w.reply()
    result = w.ex.finished()
    assert w.ex.done and w.settled == 1 and result is not None
    assert (result.outcome, result.payload, result.init_ms, result.max_memory_mb) == (Outcome.success, b'"hi"',
                                                                                      None, 30)
    assert result.duration_ms == pytest.approx(250)
    assert w.lines()[:3] == [f"START RequestId: {RID} Version: $LATEST", "printed", f"END RequestId: {RID}"]
    assert w.lines()[3].startswith(f"REPORT RequestId: {RID}\tDuration: 250.00 ms\t")
    assert w.channel.invocations == 1 and w.channel.closed_with is None


def test_a_new_worker_is_sent_the_event_once_its_init_frame_arrives():
    w = World(initialised=False)
    w.ex.begin()
    assert w.channel.sent == [] and w.lines() == []
    w.clock.advance(0.5)
    w.channel.frames.append(({"t": "ready", "maxrss_kb": 1024}, b""))
    w.ex.on_reply()
    assert w.channel.initialised and len(w.channel.sent) == 1 and not w.ex.done
    w.reply(ok=False, body=json.dumps({"errorType": "ValueError", "errorMessage": "boom"}).encode())
    result = w.ex.finished()
    assert result is not None and (result.outcome, result.error_type) == (Outcome.error, "ValueError")
    assert result.init_ms == pytest.approx(500) and "Init Duration: 500.00 ms" in w.lines()[-1]
    assert w.lines()[0] == f"START RequestId: {RID} Version: $LATEST"


def test_an_init_error_ends_the_environment():
    w = World(initialised=False)
    w.ex.begin()
    error = json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": "no module"}).encode()
    w.channel.frames.append(({"t": "init_error", "maxrss_kb": 1024}, error))
    w.ex.on_reply()
    assert w.ex.done and w.ex.finished() is None and w.channel.sent == []
    result = w.ex.lose()
    assert (result.outcome, result.error_type, result.duration_ms) == (Outcome.init_error,
                                                                      "Runtime.ImportModuleError", 0.0)
    assert w.channel.closed_with == 1.0 and "Status: error\tError Type: Runtime.ImportModuleError" in w.lines()[-1]


def test_the_deadline_kills_the_worker_as_a_timeout():
    w = World()
    w.ex.begin()
    assert w.ex.on_timer(w.clock.monotonic()) == pytest.approx(exchange.MEMORY_POLL_S)
    w.clock.advance(2.999)
    w.ex.on_timer(w.clock.monotonic())
    assert not w.ex.done
    w.clock.advance(0.001)
    assert w.ex.on_timer(w.clock.monotonic()) == 0.0 and w.ex.done and w.ex.finished() is None
    result = w.ex.lose()
    assert (result.outcome, result.error_type, result.duration_ms) == (Outcome.timeout, "Sandbox.Timedout", 3000.0)
    assert json.loads(result.payload)["errorMessage"] == f"RequestId: {RID} Error: Task timed out after 3.00 seconds"
    assert w.channel.closed_with == 0.0  # killed at once


def test_timer_flushes_the_log_while_the_handler_runs():
    w = World()
    w.ex.begin()
    w.clock.advance(exchange.LOG_FLUSH_S)
    w.ex.on_timer(w.clock.monotonic())
    assert w.lines() == [f"START RequestId: {RID} Version: $LATEST"]  # before the invocation ends


def test_a_memory_sample_past_the_limit_kills_the_worker():
    w = World()
    w.ex.begin()
    w.channel.rss = 129
    w.clock.advance(exchange.MEMORY_POLL_S)
    w.ex.on_timer(w.clock.monotonic())
    assert w.ex.done and w.ex.finished() is None
    result = w.ex.lose()
    assert (result.outcome, result.error_type, result.max_memory_mb) == (Outcome.out_of_memory,
                                                                         "Runtime.OutOfMemory", 129)


def test_a_reply_whose_peak_passed_the_limit_is_out_of_memory():
    w = World()
    w.ex.begin()
    w.reply(maxrss_kb=200 * 1024)
    assert w.ex.finished() is None
    assert w.ex.lose().outcome is Outcome.out_of_memory


def test_an_exit_without_a_reply_is_a_runtime_exit_error():
    w = World()
    w.ex.begin()
    w.ex.on_exit()
    w.ex.on_reply()  # (a driver may still report the socket: the end is settled once)
    assert w.ex.done and w.settled == 1 and w.ex.finished() is None
    result = w.ex.lose()
    assert (result.outcome, result.error_type) == (Outcome.crashed, "Runtime.ExitError")
    assert json.loads(result.payload)["errorMessage"] == f"RequestId: {RID} Error: Runtime exited with error: exit " \
                                                         "status 3"
    assert w.channel.closed_with == 1.0  # given a moment to be reaped
