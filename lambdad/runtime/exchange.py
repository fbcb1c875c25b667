"""One invocation on one worker, as a state machine that readiness drives.

The steps of an invocation are written here once: on a cold start, wait for the worker's init
frame (START, or the init error); send the event; then, until the reply, read the handler's
output, sample its memory, flush the log and watch the deadline; end with END and REPORT. A driver
feeds the machine what became ready and when its timer is due: `Worker.invoke` polls on the
calling thread (dispatcher, pollers, CLI), `Worker.invoke_ready` registers the same descriptors
and timer on an asyncio event loop (the HTTP faces). So both drivers share every outcome, log line
and timeout.

Nothing here blocks but `lose`: an environment that is lost (timed out, out of memory, exited, or
whose handler failed to load) is killed and reaped, which the async driver runs on an executor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from lambdad.clock import Clock
from lambdad.logs import InvocationLog
from lambdad.runtime.invocation import (
    InvokeRequest,
    InvokeResult,
    Limits,
    Outcome,
    end_line,
    report_line,
    runtime_error,
    start_line,
)
from lambdad.runtime.launcher import ExitStatus, exit_reason

#: Lambda's limit on the init phase. An init that takes longer is, on Lambda, run again inside the
#: invocation under the function's timeout; lambdad lets it go on for that long (same outcome).
INIT_TIMEOUT_S = 10.0
#: While a handler runs, its resident memory is sampled this often.
MEMORY_POLL_S = 0.02
#: Output of a long invocation reaches the log at least this often.
LOG_FLUSH_S = 0.1

Frame = tuple[dict, bytes]
#: The machine's end: the reply (or init) frame, an Outcome (timeout, out of memory), or None (the
#: worker is gone). `_WAITING` until then.
Verdict = Frame | Outcome | None
_WAITING = object()


class Channel(Protocol):
    """What the machine needs of a worker: its control socket, output pipe and process, by meaning."""

    started_mono: float  #: monotonic time of the spawn request
    initialised: bool  #: the handler is loaded (its init frame was read)
    invocations: int
    peak_mb: int  #: the highest resident memory seen

    @property
    def ctrl_open(self) -> bool: ...

    def send(self, req: InvokeRequest, deadline_ms: int) -> None: ...

    def read_frame(self) -> Frame | None: ...

    def take_reports(self) -> None: ...

    def pump_output(self, log: InvocationLog) -> None: ...

    def flush_partial(self, log: InvocationLog) -> None: ...

    def rss_mb(self) -> int: ...

    def close(self, grace_s: float = ..., log: InvocationLog | None = ...) -> ExitStatus | None: ...


class Exchange:
    """One invocation, START to REPORT. Call `begin`, then the `on_*` inputs until `done`, then
    `finished` (None: the environment is lost, call `lose`)."""

    def __init__(self, worker: Channel, req: InvokeRequest, limits: Limits, log: InvocationLog, clock: Clock,
                 on_done: Callable[[], None] | None = None) -> None:
        self.worker = worker
        self.req = req
        self.limits = limits
        self.log = log
        self._clock = clock
        self._on_done = on_done
        self.verdict: Verdict | object = _WAITING
        self.init_ms: float | None = None
        self.start_mono = 0.0
        self.deadline_mono = 0.0
        self._initialising = not worker.initialised
        self._init_failed = False
        now_mono = clock.monotonic()
        self._sample_mono = now_mono + MEMORY_POLL_S
        self._flush_mono = now_mono + LOG_FLUSH_S

    @property
    def done(self) -> bool:
        return self.verdict is not _WAITING

    def begin(self) -> None:
        """A ready worker gets the event now; a new one first has its init frame awaited."""
        self.worker.invocations += 1
        if self._initialising:
            self.deadline_mono = self.worker.started_mono + INIT_TIMEOUT_S + self.limits.timeout_s
            return
        self.log.line(start_line(self.req.request_id))
        start_mono = self._clock.monotonic()
        self._send(start_mono, start_mono + self.limits.timeout_s)

    # -- inputs from the driver ---------------------------------------------------------------------

    def on_reply(self, output_first: bool = True) -> None:
        """The control socket is readable. Output first: whatever the handler printed before it replied
        is already in the pipe, so the log keeps its order whichever readiness a driver sees first (a
        driver that has just read the output passes False)."""
        if output_first:
            self.worker.pump_output(self.log)
        frame = self.worker.read_frame()
        if frame is not None or not self.worker.ctrl_open:
            self._settle(frame)

    def on_output(self) -> None:
        self.worker.pump_output(self.log)

    def on_exit(self) -> None:
        """The process is gone (even if something it started still holds the socket open); a reply it
        sent just before dying is still in the socket."""
        self.worker.pump_output(self.log)
        self._settle(self.worker.read_frame())

    def on_timer(self, now_mono: float) -> float:
        """The deadline, the memory sample and the log flush; returns seconds until the next is due."""
        if now_mono >= self.deadline_mono:
            self._settle(Outcome.timeout)
            return 0.0
        if now_mono >= self._sample_mono:
            if self.worker.rss_mb() > self.limits.memory_mb:
                self._settle(Outcome.out_of_memory)
                return 0.0
            self._sample_mono = now_mono + MEMORY_POLL_S
        if now_mono >= self._flush_mono:
            self.log.flush()
            self._flush_mono = now_mono + LOG_FLUSH_S
        return max(0.0, min(self.deadline_mono, self._sample_mono, self._flush_mono) - now_mono)

    # -- transitions ----------------------------------------------------------------------------------

    def _send(self, start_mono: float, deadline_mono: float) -> None:
        self.start_mono = start_mono
        self.deadline_mono = deadline_mono
        deadline_ms = int((self._clock.time() + (deadline_mono - start_mono)) * 1000)
        try:
            self.worker.send(self.req, deadline_ms)
        except OSError:
            self._end(None)

    def _settle(self, verdict: Verdict) -> None:
        if not self._initialising:
            self._end(verdict)
            return
        self._initialising = False
        now_mono = self._clock.monotonic()
        self.init_ms = (now_mono - self.worker.started_mono) * 1000
        self.log.line(start_line(self.req.request_id))
        self.start_mono = now_mono
        if verdict is None or isinstance(verdict, Outcome):
            self._end(verdict)
        elif verdict[0]["t"] == "init_error":
            self._init_failed = True
            self._end(verdict)
        else:
            self.worker.initialised = True
            # An init past Lambda's 10 s runs again inside the invocation: its overrun counts against the timeout.
            deadline_mono = min(now_mono, self.worker.started_mono + INIT_TIMEOUT_S) + self.limits.timeout_s
            self._send(self._clock.monotonic(), deadline_mono)

    def _end(self, verdict: Verdict) -> None:
        if self.verdict is _WAITING:
            self.verdict = verdict
            if self._on_done is not None:
                self._on_done()

    # -- endings ----------------------------------------------------------------------------------------

    def finished(self) -> InvokeResult | None:
        """The result from the worker's reply, when the environment lives on; None when it is lost."""
        verdict = self.verdict
        if not isinstance(verdict, tuple) or self._init_failed:
            return None
        head, body = verdict
        duration_ms = (self._clock.monotonic() - self.start_mono) * 1000
        if kb_to_mb(head.get("maxrss_kb", 0)) > self.limits.memory_mb:
            # The peak passed the limit between two samples: on Lambda the process would be dead.
            self.verdict = Outcome.out_of_memory
            return None
        outcome = Outcome.success if head.get("ok") else Outcome.error
        return self._finish(outcome, body, duration_ms, head)

    def lose(self) -> InvokeResult:
        """The environment is lost: end it (this blocks while the process is reaped) and say why."""
        worker, limits, rid = self.worker, self.limits, self.req.request_id
        if self._init_failed and isinstance(self.verdict, tuple):
            head, body = self.verdict
            worker.close(grace_s=1.0, log=self.log)
            return self._finish(Outcome.init_error, body, 0.0, head)
        why = self.verdict
        worker.take_reports()
        # A timed-out or oversized worker is killed at once; one that exited is given a moment to be reaped.
        status = worker.close(grace_s=0.0 if why else 1.0, log=self.log)
        duration_ms = (self._clock.monotonic() - self.start_mono) * 1000
        if why is Outcome.timeout:
            body = runtime_error("Sandbox.Timedout", rid, f"Task timed out after {limits.timeout_s:.2f} seconds")
            return self._finish(Outcome.timeout, body, limits.timeout_s * 1000, {})
        if why is Outcome.out_of_memory:
            body = runtime_error("Runtime.OutOfMemory", rid, "Runtime exited with error: signal: killed")
            peak = {"maxrss_kb": max(limits.memory_mb, worker.peak_mb) * 1024}
            return self._finish(Outcome.out_of_memory, body, duration_ms, peak)
        body = runtime_error("Runtime.ExitError", rid, exit_reason(status))
        return self._finish(Outcome.crashed, body, duration_ms, {})

    def _finish(self, outcome: Outcome, body: bytes, duration_ms: float, head: dict) -> InvokeResult:
        """Close the invocation's log with END and REPORT and build the result."""
        log, rid = self.log, self.req.request_id
        self.worker.flush_partial(log)
        max_mb = kb_to_mb(head["maxrss_kb"]) if "maxrss_kb" in head else self.worker.peak_mb
        error_type = None if outcome is Outcome.success else error_type_of(body)
        log.line(end_line(rid))
        log.line(report_line(rid, outcome, error_type, duration_ms, self.init_ms, self.limits.memory_mb, max_mb))
        log.flush()
        return InvokeResult(rid, outcome, body, error_type, duration_ms, self.init_ms, max_mb, log.tail())


def kb_to_mb(kb: int) -> int:
    return -(-int(kb) // 1024)


def error_type_of(body: bytes) -> str | None:
    """The `errorType` of an error document; None when the body is not one."""
    try:
        return json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return None
