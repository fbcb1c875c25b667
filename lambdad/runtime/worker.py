"""Parent side of one execution environment: its control socket, output pipe and process.

A `Worker` runs one invocation at a time through the state machine in `exchange.py`, which it
drives in one of two ways over the same descriptors (control socket, output pipe, pidfd) and the
same timer: `invoke` polls them on the calling thread, `invoke_ready` waits for them on the
caller's asyncio event loop (the HTTP faces save two thread hand-offs per call). Either way a
handler printing megabytes never blocks, one overrunning its timeout is killed on time, one
growing past its memory is killed as soon as it is seen, and a worker that dies is noticed even
when a process it started still holds its socket.

Its `Clock` must tell real time: the worker waits on real processes.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.logs import MAX_LINE_BYTES, InvocationLog
from lambdad.manifest.model import Function
from lambdad.runtime import wire
from lambdad.runtime.environment import log_stream_name, worker_environment
from lambdad.runtime.exchange import Exchange, Frame, kb_to_mb
from lambdad.runtime.invocation import InvokeRequest, InvokeResult, Limits
from lambdad.runtime.launcher import ExitStatus, Spawned, Zygote
from lambdad.runtime.wire import READ_CHUNK

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR

log_exception = logging.getLogger(__name__).exception


class Worker:
    """A live execution environment. Not thread-safe: the pool lends it to one invocation at a time
    (`kill` is the exception: a forced stop may call it from another thread)."""

    def __init__(self, spawned: Spawned, zygote: Zygote, log_stream: str, started_mono: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.pid = spawned.pid
        self.log_stream = log_stream
        self.started_mono = started_mono  #: monotonic time of the spawn request
        self.invocations = 0
        self.initialised = False  #: the handler is loaded: its init frame was read
        self.alive = True
        self._ctrl = spawned.ctrl
        self._ctrl_fd = spawned.ctrl.fileno()
        self._ctrl_open = True
        os.set_blocking(self._ctrl_fd, False)
        self._out = spawned.out
        self._out_open = True
        self._zygote = zygote
        self._clock = clock
        self._frames = wire.FrameReader()
        self._pending: list[Frame] = []  #: frames read but not yet taken
        #: The running invocation's `on_write`: told each path its handler reports writing.
        self._on_write: Callable[[str, float | None], None] | None = None
        self._partial = bytearray()
        self.peak_mb = 0  #: the highest resident memory seen
        self._poll = select.poll()
        self._poll.register(self._ctrl_fd, _POLL_IN)
        self._poll.register(self._out, _POLL_IN)
        self._pidfd = _open_pidfd(self.pid)
        if self._pidfd is not None:
            self._poll.register(self._pidfd, select.POLLIN)

    # -- the two drivers of an invocation ------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Initialised and warm: `invoke_ready` can serve it."""
        return self.initialised and self.alive

    def invoke(self, req: InvokeRequest, limits: Limits, log: InvocationLog) -> InvokeResult:
        """Run one invocation to its end, START to REPORT, polling on this thread. Afterwards the worker
        is `alive` only if the outcome keeps the environment."""
        ex = Exchange(self, req, limits, log, self._clock)
        ex.begin()
        poll, ctrl, pidfd, clock = self._poll.poll, self._ctrl_fd, self._pidfd, self._clock
        while not ex.done:
            wait_s = ex.on_timer(clock.monotonic())
            if ex.done:
                break
            ready = {fd for fd, _ in poll(int(wait_s * 1000) + 1)}
            if not ready:
                continue
            # Output first, so that the log keeps its order (see `Exchange.on_reply`).
            if self._out in ready:
                ex.on_output()
            if ctrl in ready:
                ex.on_reply(output_first=False)
            if pidfd is not None and pidfd in ready and not ex.done:
                ex.on_exit()
        result = ex.finished()
        return ex.lose() if result is None else result

    async def invoke_ready(
        self, req: InvokeRequest, limits: Limits, log: InvocationLog, run_blocking: Callable[..., Awaitable[Any]]
    ) -> InvokeResult:
        """`invoke`, waiting on the caller's event loop rather than in a thread. Endings that block
        (killing a worker that timed out, ran out of memory or died) go to `run_blocking`."""
        import asyncio

        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        ex = Exchange(self, req, limits, log, self._clock, on_done=lambda: done.done() or done.set_result(None))
        ex.begin()
        if not ex.done:
            await self._wait_on(loop, ex, done)
        result = ex.finished()
        return await run_blocking(ex.lose) if result is None else result

    async def _wait_on(self, loop: Any, ex: Exchange, done: Any) -> None:
        """The descriptors as readers and the machine's timer as one rescheduled callback, until `done`."""
        out = self._out

        def on_output() -> None:
            ex.on_output()
            if not self._out_open:  # end of file: readable for ever after
                loop.remove_reader(out)

        def tick() -> None:
            wait_s = ex.on_timer(self._clock.monotonic())
            if not ex.done:
                timer[0] = loop.call_later(wait_s, tick)

        watched = [(self._ctrl_fd, ex.on_reply)]
        if self._out_open:
            watched.append((out, on_output))
        if self._pidfd is not None:
            watched.append((self._pidfd, ex.on_exit))
        for fd, callback in watched:
            loop.add_reader(fd, callback)
        timer = [loop.call_later(ex.on_timer(self._clock.monotonic()), tick)]
        try:
            await done
        finally:
            for fd, _ in watched:
                loop.remove_reader(fd)
            timer[0].cancel()

    # -- the channel the exchange reads and writes -------------------------------------------------------

    @property
    def ctrl_open(self) -> bool:
        return self._ctrl_open

    def send(self, req: InvokeRequest, deadline_ms: int) -> None:
        """The event, with the deadline the handler's context reports (wall clock, milliseconds)."""
        head = {"t": "invoke", "id": req.request_id, "arn": req.invoked_arn, "deadline_ms": deadline_ms}
        if req.client_context:
            head["client_context"] = req.client_context
        if req.identity:
            head["identity"] = req.identity
        if req.trace_id:
            head["trace_id"] = req.trace_id
        self._on_write = req.on_write
        wire.send(self._ctrl_fd, head, req.payload)

    def read_frame(self) -> Frame | None:
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

    def _take_frame(self) -> Frame | None:
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
        self.peak_mb = max(self.peak_mb, kb_to_mb(frame[0].get("maxrss_kb", 0)))
        return frame

    def take_reports(self) -> None:
        """The paths an invocation that is being given up reported and lambdad has not read yet."""
        while self._ctrl_open and self.read_frame() is not None:
            pass

    def pump_output(self, log: InvocationLog) -> None:
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

    def flush_partial(self, log: InvocationLog) -> None:
        """Output without a final newline belongs to this invocation, not to the next one."""
        if self._partial:
            log.output([bytes(self._partial)])
            self._partial = bytearray()

    # -- process control ----------------------------------------------------------------------------

    def rss_mb(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                rss_mb = int(f.read().split()[1]) * _PAGE_KB // 1024
        except (OSError, ValueError, IndexError):
            return 0
        self.peak_mb = max(self.peak_mb, rss_mb)
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
            self.pump_output(log)
            self.flush_partial(log)
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


def spawn_worker(zygote: Zygote, fn: Function, region: str, inherited_env: Mapping[str, str],
                 clock: Clock = SYSTEM_CLOCK) -> Worker:
    """Fork a new execution environment for `fn` from `zygote` (a cold start). Raises LaunchError."""
    zygote.start()
    stream = log_stream_name(clock.time())
    env = worker_environment(fn, region, stream, zygote.python_version or "3", inherited_env)
    started_mono = clock.monotonic()
    spawned = zygote.spawn({"env": env, "code": str(fn.code), "handler": fn.handler})
    return Worker(spawned, zygote, stream, started_mono, clock)
