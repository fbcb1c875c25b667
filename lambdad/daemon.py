"""`lambdad up`: build everything from the manifest, run until a signal, stop in stages.

The main thread owns the loop: `step(now)` does one round of housekeeping and says how long to
sleep; signals only land in an inbox that the loop reads. Shutdown is graceful first (stop taking
work, let running invocations finish within the grace period), forced on a second signal.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from lambdad import __version__
from lambdad.buckets.sync import BucketSync, bucket_root
from lambdad.buckets.watch import BucketWatcher
from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.dispatcher import Dispatcher
from lambdad.errors import EXIT_INTERRUPTED, EXIT_OK
from lambdad.logs import LogBook
from lambdad.manifest.model import Manifest, ScheduleTrigger
from lambdad.runtime.functions import Functions
from lambdad.signals import SignalInbox
from lambdad.statedir import StateDir
from lambdad.store import Durability, Store, events
from lambdad.summary import describe_manifest

if TYPE_CHECKING:
    from lambdad.schedules.service import Schedules

log = logging.getLogger(__name__)

#: How long running invocations may take to finish after the first Ctrl-C / SIGTERM.
DEFAULT_GRACE_S = 10.0
#: During a graceful stop the loop checks this often whether the last invocation ended.
STOP_POLL_S = 0.05


class DaemonState(enum.StrEnum):
    starting = "starting"
    running = "running"
    stopping = "stopping"
    stopped = "stopped"


class Console:
    """Thread-safe line output, each function's lines prefixed with its name."""

    def __init__(self, out: TextIO) -> None:
        self._out: TextIO | None = out
        self._lock = threading.Lock()
        self.width = 8

    def say(self, text: str) -> None:
        with self._lock:
            if self._out is None:
                return
            try:
                self._out.write(text + "\n")
                self._out.flush()
            except (OSError, ValueError):  # the terminal went away: the daemon goes on, silently
                self._out = None

    def function_line(self, function: str, message: str) -> None:
        # The runtime joins a traceback's lines with CR (as AWS does); a terminal needs real newlines.
        prefix = f"{function:>{self.width}} | "
        lines = message.split("\r")
        self.say("\n".join(prefix + line for line in lines))


class Daemon:
    def __init__(
        self,
        manifest: Manifest,
        state: StateDir,
        out: TextIO = sys.stdout,
        clock: Clock = SYSTEM_CLOCK,
        grace_s: float = DEFAULT_GRACE_S,
        started_at: float | None = None,
        make_functions: Callable[[Manifest, LogBook, Clock], Functions] = Functions,
    ) -> None:
        self.manifest = manifest
        self.state = state
        self.clock = clock
        self.grace_s = grace_s
        self.console = Console(out)
        self.status = DaemonState.starting
        self.exit_code = EXIT_OK
        self._started_at = time.monotonic() if started_at is None else started_at
        self._stop_deadline = 0.0
        self.functions: Functions | None = None
        self.store: Store | None = None
        self.dispatcher: Dispatcher | None = None
        self.buckets: BucketWatcher | None = None
        self.schedules: Schedules | None = None
        self._make_functions = make_functions

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.state.lock()
        self.console.width = max((len(n) for n in self.manifest.functions), default=8)
        logbook = LogBook(self.state.logs, echo=self.console.function_line)
        self.functions = self._make_functions(self.manifest, logbook, self.clock)
        # Zygotes start in the background: "ready" should not wait for an interpreter to boot.
        threading.Thread(target=self._start_runtimes, name="runtimes", daemon=True).start()
        self.store = Store.in_state_folder(self.state.path, Durability(self.manifest.durability))
        with self.store.reading() as tx:
            waiting = sum(c.queued + c.retrying + c.in_flight for c in events.counts(tx).values())
        self.dispatcher = Dispatcher(self.store, self.functions, self.clock, on_warning=self._warn)
        syncs = [
            BucketSync(b, self.manifest, self.store, self.clock, warn=self._warn)
            for b in self.manifest.buckets.values()
            if bucket_root(b)
        ]
        self.buckets = BucketWatcher(syncs, warn=self._warn, on_commit=self.dispatcher.poke)
        self.schedules = self._make_schedules()
        self.state.write_info(
            {
                "pid": os.getpid(),
                "version": __version__,
                "manifest": str(self.manifest.file),
                "started": self.clock.time(),
            }
        )
        self.console.say(describe_manifest(self.manifest, self.state.path))
        if waiting:
            self.console.say(f"resuming {waiting} queued async event(s)")
        self.dispatcher.start()
        self.buckets.start()
        if self.schedules is not None:
            self.schedules.start()
        elapsed_ms = (time.monotonic() - self._started_at) * 1000
        self.console.say(f"ready in {elapsed_ms:.0f} ms (Ctrl-C to stop)")
        self.status = DaemonState.running

    def _make_schedules(self) -> Schedules | None:
        """APScheduler is imported only when the manifest has schedules (it costs 85 ms of start-up)."""
        if not any(isinstance(t, ScheduleTrigger) for fn in self.manifest.functions.values() for t in fn.events):
            return None
        from lambdad.schedules.service import Schedules

        assert self.store is not None and self.dispatcher is not None
        return Schedules(self.manifest, self.store, self.clock, on_commit=self.dispatcher.poke)

    def _warn(self, message: str) -> None:
        self.console.say(f"warning: {message}")

    def _start_runtimes(self) -> None:
        assert self.functions is not None
        for problem in self.functions.start_runtimes():
            self.console.say(f"warning: {problem}")

    def run(self) -> int:
        """Start, serve until stopped, and return the exit code."""
        with SignalInbox() as inbox:
            self.start()
            try:
                while self.status is not DaemonState.stopped:
                    inbox.wait(self.step(self.clock.monotonic()))
                    for sig in inbox.take():
                        self.handle_signal(sig)
            finally:
                if self.status is not DaemonState.stopped:
                    self._finish(force=True)
        return self.exit_code

    def step(self, now: float) -> float:
        """One round of housekeeping; returns the seconds until the next one is due."""
        assert self.functions is not None
        if self.status is DaemonState.stopping:
            if self.functions.in_flight == 0 or now >= self._stop_deadline:
                self._finish(force=self.functions.in_flight > 0)
            return STOP_POLL_S
        return self.functions.step(now)

    def handle_signal(self, sig: signal.Signals) -> None:
        if self.status is DaemonState.stopped:
            return  # e.g. `timeout` signals both the process and its group: the second one finds us done
        if sig is signal.SIGHUP:
            self.console.say("SIGHUP: nothing to reload yet")
            return
        if self.status is DaemonState.stopping:
            self.console.say("forced stop: killing running invocations")
            self.exit_code = EXIT_INTERRUPTED
            self._finish(force=True)
            return
        self.begin_stop(sig.name)

    def begin_stop(self, why: str) -> None:
        assert self.functions is not None and self.dispatcher is not None
        self.status = DaemonState.stopping
        self.dispatcher.stop_claiming()
        self.functions.stop_accepting()
        self._stop_deadline = self.clock.monotonic() + self.grace_s
        running = self.functions.in_flight
        wait = f"; waiting up to {self.grace_s:g}s for {running} running invocation(s)" if running else ""
        self.console.say(f"{why}: stopping{wait} (Ctrl-C again to force)")

    def _finish(self, force: bool) -> None:
        """Stop everything, in order: new work, running work (killed only when forced), workers, store."""
        if self.functions is not None:
            if force and self.functions.in_flight:
                self.console.say(f"grace period over: killing {self.functions.in_flight} running invocation(s)")
            if self.schedules is not None:
                self.schedules.stop()
            if self.buckets is not None:
                self.buckets.stop()
            if self.dispatcher is not None:
                if force:
                    self.dispatcher.abandon()  # killed async invocations run again at the next start
                    self.functions.kill_running()
                self.dispatcher.close()
            self.functions.close(force=force)
        if self.store is not None:
            self.store.close()
        self.state.unlock()
        self.status = DaemonState.stopped
        self.console.say("stopped")
