"""Parent side of one execution environment: send an event, watch the clock and the memory, collect
the result and the output.

`Worker.invoke` is the one core loop of the runtime (on purpose in one place): it polls the
worker's control socket, its output pipe and its pidfd together, so a handler printing megabytes
never blocks, a handler overrunning its timeout is killed on time, a handler growing past its
memory is killed as soon as it is seen, and a worker that dies is noticed even when a process it
started still holds its socket.

It runs on real time (`time.monotonic`), not on an injected clock: it waits on real processes.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdad.logs import MAX_LINE_BYTES, InvocationLog
from lambdad.manifest.model import Function
from lambdad.runtime import wire
from lambdad.runtime.environment import log_stream_name, worker_environment
from lambdad.runtime.invocation import (
    InvokeRequest,
    InvokeResult,
    Outcome,
    end_line,
    report_line,
    runtime_error,
    start_line,
)
from lambdad.runtime.launcher import ExitStatus, Spawned, Zygote
from lambdad.runtime.wire import READ_CHUNK

#: Lambda's limit on the init phase. An init that takes longer is, on Lambda, run again inside the
#: invocation under the function's timeout; lambdad lets it go on for that long (same outcome).
INIT_TIMEOUT_S = 10.0
#: While a handler runs, its resident memory is sampled this often.
MEMORY_POLL_S = 0.02
#: Output of a long invocation reaches the log at least this often.
LOG_FLUSH_S = 0.1
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR

#: Go-style names, as Lambda's "Runtime exited with error: signal: killed".
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
}

_Frame = tuple[dict, bytes]
log_exception = logging.getLogger(__name__).exception


def exit_reason(status: ExitStatus | None) -> str:
    if status is None or (status.code is None and status.signal is None):
        return "Runtime exited without providing a reason"
    if status.signal is not None:
        return f"Runtime exited with error: signal: {_SIGNAL_NAMES.get(status.signal, f'signal {status.signal}')}"
    if status.code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: exit status {status.code}"


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int


class Worker:
    """A live execution environment. Not thread-safe: the pool lends it to one invocation at a time
    (`kill` is the exception: a forced stop may call it from another thread)."""

    def __init__(self, spawned: Spawned, zygote: Zygote, log_stream: str, started: float) -> None:
        self.pid = spawned.pid
        self.log_stream = log_stream
        self.started = started  #: monotonic time of the spawn request
        self.invocations = 0
        self.alive = True
        self._ctrl = spawned.ctrl
        self._ctrl_fd = spawned.ctrl.fileno()
        self._ctrl_open = True
        os.set_blocking(self._ctrl_fd, False)
        self._out = spawned.out
        self._out_open = True
        self._zygote = zygote
        self._frames = wire.FrameReader()
        self._pending: list[_Frame] = []  #: frames read but not yet taken
        #: The running invocation's `on_write`: told each path its handler reports writing.
        self._on_write: Callable[[str, float | None], None] | None = None
        self._partial = bytearray()
        self._ready = False
        self._peak_mb = 0
        self._poll = select.poll()
        self._poll.register(self._ctrl_fd, _POLL_IN)
        self._poll.register(self._out, _POLL_IN)
        self._pidfd = _open_pidfd(self.pid)
        if self._pidfd is not None:
            self._poll.register(self._pidfd, select.POLLIN)

    # -- the invocation loop ------------------------------------------------------------------------

    def invoke(self, req: InvokeRequest, limits: Limits, log: InvocationLog) -> InvokeResult:
        """Run one invocation to its end, START to REPORT. Afterwards the worker is `alive` only if the
        outcome keeps the environment."""
        self.invocations += 1
        init_ms: float | None = None
        if self._ready:
            deadline = time.monotonic() + limits.timeout_s
        else:
            frame = self._wait_frame(self.started + INIT_TIMEOUT_S + limits.timeout_s, limits, log)
            now = time.monotonic()
            init_ms = (now - self.started) * 1000
            log.line(start_line(req.request_id))
            if frame is None or isinstance(frame, Outcome):
                return self._failed(frame, req, limits, log, init_ms, now)
            head, body = frame
            if head["t"] == "init_error":
                self.close(grace_s=1.0, log=log)
                return self._finish(req, limits, Outcome.init_error, body, log, init_ms, 0.0, head)
            self._ready = True
            # An init past Lambda's 10 s runs again inside the invocation: its overrun counts against the timeout.
            deadline = min(now, self.started + INIT_TIMEOUT_S) + limits.timeout_s
        if init_ms is None:
            log.line(start_line(req.request_id))
        start = time.monotonic()
        try:
            self._send(req, deadline, start)
        except OSError:
            return self._failed(None, req, limits, log, init_ms, start)
        frame = self._wait_frame(deadline, limits, log)
        result = self._result(frame, req, limits, log, init_ms, start)
        return result if isinstance(result, InvokeResult) else self._failed(result, req, limits, log, init_ms, start)

    @property
    def ready(self) -> bool:
        """Initialised and warm: `invoke_ready` can serve it."""
        return self._ready and self.alive

    async def invoke_ready(
        self, req: InvokeRequest, limits: Limits, log: InvocationLog, run_blocking: Callable[..., Awaitable[Any]]
    ) -> InvokeResult:
        """`invoke` for a ready worker, waiting on the caller's event loop rather than in a thread (the
        HTTP faces save two thread hand-offs per call). Endings that block (killing a worker that
        timed out, ran out of memory or died) go to `run_blocking`."""
        self.invocations += 1
        log.line(start_line(req.request_id))
        start = time.monotonic()
        deadline = start + limits.timeout_s
        try:
            self._send(req, deadline, start)
            frame = await self._wait_frame_async(deadline, limits, log)
        except OSError:
            frame = None
        result = self._result(frame, req, limits, log, None, start)
        if isinstance(result, InvokeResult):
            return result
        return await run_blocking(self._failed, result, req, limits, log, None, start)

    def _send(self, req: InvokeRequest, deadline: float, start: float) -> None:
        head = {"t": "invoke", "id": req.request_id, "arn": req.invoked_arn,
                "deadline_ms": int((time.time() + (deadline - start)) * 1000)}
        if req.client_context:
            head["client_context"] = req.client_context
        if req.identity:
            head["identity"] = req.identity
        if req.trace_id:
            head["trace_id"] = req.trace_id
        self._on_write = req.on_write
        wire.send(self._ctrl_fd, head, req.payload)

    def _result(
        self, frame: _Frame | Outcome | None, req: InvokeRequest, limits: Limits, log: InvocationLog,
        init_ms: float | None, start: float,
    ) -> InvokeResult | Outcome | None:
        """The invocation's result from the worker's reply; otherwise why the environment is lost
        (an Outcome, or None for a crash), for `_failed`."""
        if frame is None or isinstance(frame, Outcome):
            return frame
        head, body = frame
        duration_ms = (time.monotonic() - start) * 1000
        if _kb_to_mb(head.get("maxrss_kb", 0)) > limits.memory_mb:
            # The peak passed the limit between two samples: on Lambda the process would be dead.
            return Outcome.out_of_memory
        outcome = Outcome.success if head.get("ok") else Outcome.error
        return self._finish(req, limits, outcome, body, log, init_ms, duration_ms, head)

    def _wait_frame(self, deadline: float, limits: Limits, log: InvocationLog) -> _Frame | Outcome | None:
        """The next frame from the worker; an Outcome for timeout / out of memory; None if it died."""
        next_sample = time.monotonic() + MEMORY_POLL_S
        next_flush = time.monotonic() + LOG_FLUSH_S
        while True:
            now = time.monotonic()
            if now >= deadline:
                return Outcome.timeout
            if now >= next_sample:
                if self._rss_mb() > limits.memory_mb:
                    return Outcome.out_of_memory
                next_sample = now + MEMORY_POLL_S
            if now >= next_flush:
                log.flush()
                next_flush = now + LOG_FLUSH_S
            wait_ms = max(0, int((min(deadline, next_sample, next_flush) - now) * 1000) + 1)
            ready = {fd for fd, _ in self._poll.poll(wait_ms)}
            if not ready:
                continue
            # Output first: whatever the handler printed before replying is already in the pipe, so
            # a poll that reports the reply reports the output too, and the log keeps its order.
            if self._out in ready:
                self._pump_output(log)
            if self._ctrl_fd in ready:
                frame = self._read_frame()
                if frame is not None or not self._ctrl_open:
                    return frame
            if self._pidfd is not None and self._pidfd in ready:
                # The process is gone (even if something it started still holds the socket open);
                # a reply it sent just before dying is still in the socket.
                return self._read_frame()

    async def _wait_frame_async(self, deadline: float, limits: Limits, log: InvocationLog) -> _Frame | Outcome | None:
        """`_wait_frame` on an event loop: the same descriptors and timers, as callbacks."""
        import asyncio

        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        timers: list[asyncio.TimerHandle] = []

        def settle(value: _Frame | Outcome | None) -> None:
            if not done.done():
                done.set_result(value)

        def on_reply() -> None:
            if self._out_open:  # output first, so that the log keeps its order
                self._pump_output(log)
            frame = self._read_frame()
            if frame is not None or not self._ctrl_open:
                settle(frame)

        def on_output() -> None:
            self._pump_output(log)
            if not self._out_open:  # end of file: readable for ever after
                loop.remove_reader(self._out)

        def on_exit() -> None:
            if self._out_open:
                self._pump_output(log)
            settle(self._read_frame())

        def sample() -> None:
            if self._rss_mb() > limits.memory_mb:
                settle(Outcome.out_of_memory)
            else:
                timers.append(loop.call_later(MEMORY_POLL_S, sample))

        def flush() -> None:
            log.flush()
            timers.append(loop.call_later(LOG_FLUSH_S, flush))

        watched = [(self._ctrl_fd, on_reply)]
        if self._out_open:
            watched.append((self._out, on_output))
        if self._pidfd is not None:
            watched.append((self._pidfd, on_exit))
        for fd, callback in watched:
            loop.add_reader(fd, callback)
        timers += [loop.call_later(max(0.0, deadline - time.monotonic()), settle, Outcome.timeout),
                   loop.call_later(MEMORY_POLL_S, sample), loop.call_later(LOG_FLUSH_S, flush)]
        try:
            return await done
        finally:
            for fd, _ in watched:
                loop.remove_reader(fd)
            for timer in timers:
                timer.cancel()

    def _read_frame(self) -> _Frame | None:
        """A whole frame if one has arrived; None otherwise (and `_ctrl_open` is False at end-of-file).
        The paths the handler reports writing (`wrote` frames) go to the invocation's `on_write` on
        the way."""
        while True:
            frame = self._take_frame()
            if frame is None or frame[0].get("t") != "wrote":
                return frame
            path, at, on_write = frame[0].get("p"), frame[0].get("at"), self._on_write
            if isinstance(path, str) and on_write is not None:
                try:
                    on_write(path, at if isinstance(at, (int, float)) else None)
                except Exception:  # (a report is a hint: never the invocation's end)
                    log_exception("reporting a path the handler wrote failed")

    def _take_frame(self) -> _Frame | None:
        if not self._pending:
            try:
                data = os.read(self._ctrl_fd, READ_CHUNK)
            except BlockingIOError:
                return None
            except OSError:
                data = b""
            if not data:
                self._ctrl_open = False
                return None
            try:
                self._pending += self._frames.feed(data)
            except ValueError:
                self._ctrl_open = False
                return None
            if not self._pending:
                return None
        frame = self._pending.pop(0)
        self._peak_mb = max(self._peak_mb, _kb_to_mb(frame[0].get("maxrss_kb", 0)))
        return frame

    def _take_reports(self) -> None:
        """The paths an invocation that is being given up reported and lambdad has not read yet."""
        while self._ctrl_open and self._read_frame() is not None:
            pass

    def _pump_output(self, log: InvocationLog) -> None:
        while self._out_open:
            try:
                chunk = os.read(self._out, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._out_open = False
                self._poll.unregister(self._out)
                break
            self._partial += chunk
            lines = self._partial.split(b"\n")
            self._partial = bytearray(lines.pop())
            if len(self._partial) >= MAX_LINE_BYTES:  # a line still going: log it in line-sized pieces
                lines.append(bytes(self._partial))
                self._partial = bytearray()
            log.output(lines)

    def _flush_partial(self, log: InvocationLog) -> None:
        """Output without a final newline belongs to this invocation, not to the next one."""
        if self._partial:
            log.output([bytes(self._partial)])
            self._partial = bytearray()

    # -- endings ------------------------------------------------------------------------------------

    def _failed(
        self,
        why: Outcome | None,
        req: InvokeRequest,
        limits: Limits,
        log: InvocationLog,
        init_ms: float | None,
        start: float,
    ) -> InvokeResult:
        """The environment is lost: timed out, out of memory, or the process exited."""
        self._take_reports()
        # A timed-out or oversized worker is killed at once; one that exited is given a moment to be reaped.
        status = self.close(grace_s=0.0 if why else 1.0, log=log)
        duration_ms = (time.monotonic() - start) * 1000
        rid = req.request_id
        if why is Outcome.timeout:
            body = runtime_error("Sandbox.Timedout", rid, f"Task timed out after {limits.timeout_s:.2f} seconds")
            return self._finish(req, limits, Outcome.timeout, body, log, init_ms, limits.timeout_s * 1000, {})
        if why is Outcome.out_of_memory:
            body = runtime_error("Runtime.OutOfMemory", rid, "Runtime exited with error: signal: killed")
            peak = {"maxrss_kb": max(limits.memory_mb, self._peak_mb) * 1024}
            return self._finish(req, limits, Outcome.out_of_memory, body, log, init_ms, duration_ms, peak)
        body = runtime_error("Runtime.ExitError", rid, exit_reason(status))
        return self._finish(req, limits, Outcome.crashed, body, log, init_ms, duration_ms, {})

    def _finish(
        self,
        req: InvokeRequest,
        limits: Limits,
        outcome: Outcome,
        body: bytes,
        log: InvocationLog,
        init_ms: float | None,
        duration_ms: float,
        head: dict,
    ) -> InvokeResult:
        """Close the invocation's log with END and REPORT and build the result."""
        self._flush_partial(log)
        max_mb = _kb_to_mb(head["maxrss_kb"]) if "maxrss_kb" in head else self._peak_mb
        error_type = None if outcome is Outcome.success else _error_type(body)
        log.line(end_line(req.request_id))
        log.line(report_line(req.request_id, outcome, error_type, duration_ms, init_ms, limits.memory_mb, max_mb))
        log.flush()
        return InvokeResult(req.request_id, outcome, body, error_type, duration_ms, init_ms, max_mb, log.tail())

    # -- process control ----------------------------------------------------------------------------

    def _rss_mb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                rss_mb = int(f.read().split()[1]) * _PAGE_KB // 1024
        except (OSError, ValueError, IndexError):
            return 0
        self._peak_mb = max(self._peak_mb, rss_mb)
        return rss_mb

    def kill(self) -> None:
        """Force: the invocation running on this worker ends as Runtime.ExitError."""
        if self.alive:
            self._zygote.kill(self.pid)

    def close(self, grace_s: float = 2.0, log: InvocationLog | None = None) -> ExitStatus | None:
        """End the environment: end-of-file first (an idle worker exits by itself), SIGKILL after `grace_s`.

        The zygote then kills whatever is left in the worker's process group. What the worker
        printed before it died goes to `log` when one is given.
        """
        if not self.alive:
            return None
        self.alive = False
        self._ctrl.close()
        status = self._zygote.reap(self.pid, grace_s) if grace_s > 0 else None
        if status is None:
            self._zygote.kill(self.pid)
            status = self._zygote.reap(self.pid, 5.0)
        if log is not None:
            self._pump_output(log)
            self._flush_partial(log)
        if self._out_open:
            self._poll.unregister(self._out)
            self._out_open = False
        os.close(self._out)
        if self._pidfd is not None:
            os.close(self._pidfd)
        return status


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+); None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def spawn_worker(zygote: Zygote, fn: Function, region: str, inherited_env: Mapping[str, str], now: float) -> Worker:
    """Fork a new execution environment for `fn` from `zygote` (a cold start). Raises LaunchError."""
    zygote.start()
    stream = log_stream_name(now)
    env = worker_environment(fn, region, stream, zygote.python_version or "3", inherited_env)
    started = time.monotonic()
    spawned = zygote.spawn({"env": env, "code": str(fn.code), "handler": fn.handler})
    return Worker(spawned, zygote, stream, started)


def _kb_to_mb(kb: int) -> int:
    return -(-int(kb) // 1024)


def _error_type(body: bytes) -> str | None:
    try:
        return json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        return None
