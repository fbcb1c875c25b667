"""`lambdad up`: build everything from the manifest, run until a signal, stop in stages.

The daemon is a lifecycle over its parts (`lambdad.daemon.components`): built once into a bundle
(`lambdad.daemon.build`), then started in order, given each reload as one change record, drained
and stopped in reverse order. The main thread owns the loop: `step(mono)` does one round of
housekeeping and says how long to sleep; signals only land in an inbox that the loop reads.
Shutdown is graceful first (stop taking work, let running invocations finish within the grace
period), forced on a second signal.

The loop also checks, once a second, that the state folder and its store are still the ones it
opened: deleted or replaced, nothing accepted from then on could be kept, so the daemon stops
accepting work and exits with an error. And it rewrites daemon.json when a part starts or stops
failing (`lambdad.health`), which is how `lambdad status` knows.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.console import Console, console_logging
from lambdad.daemon import reloading
from lambdad.daemon.build import Context, MakeFunctions, Parts, build, make_bucket_sync
from lambdad.daemon.report import daemon_info
from lambdad.daemon.serving import Exposure
from lambdad.daemon.watch import ReloadWatch
from lambdad.dispatcher import Dispatcher
from lambdad.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from lambdad.health import Health
from lambdad.manifest.diff import ManifestDiff
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import Functions
from lambdad.signals import SignalInbox
from lambdad.statedir import StateDir
from lambdad.summary import describe_manifest

log = logging.getLogger(__name__)

#: How long running invocations may take to finish after the first Ctrl-C / SIGTERM.
DEFAULT_GRACE_S = 10.0
#: During a graceful stop the loop checks this often whether the last invocation ended.
STOP_POLL_S = 0.05
#: The state folder and the store are checked this often (two `stat`s).
STATE_CHECK_S = 1.0


class DaemonState(enum.StrEnum):
    starting = "starting"
    running = "running"
    stopping = "stopping"
    stopped = "stopped"


class Daemon:
    """Construction is cheap (settings and callbacks); `start` locks the state folder, builds every
    part at once (ports bound, store open) and starts them. A build that fails leaves the folder
    unlocked and nothing open."""

    parts: Parts  #: everything the daemon runs, from `start` on

    def __init__(
        self,
        manifest: Manifest,
        state: StateDir,
        out: TextIO = sys.stdout,
        clock: Clock = SYSTEM_CLOCK,
        grace_s: float = DEFAULT_GRACE_S,
        started_at: float | None = None,
        make_functions: MakeFunctions = Functions,
        expose: bool = False,
        allow_hosts: tuple[str, ...] = (),
    ) -> None:
        """`started_at`: when the process started, on `clock`'s monotonic time (for "ready in N ms")."""
        self.manifest = manifest
        self.state = state
        self.clock = clock
        self.grace_s = grace_s
        self.console = Console(out)
        self.status = DaemonState.starting
        self.exit_code = EXIT_OK
        self._started_mono = clock.monotonic() if started_at is None else started_at  #: (monotonic)
        self._stop_deadline_mono = 0.0
        #: While the manifest on disk is invalid: its problems (the previous configuration runs on).
        self.config_errors: list[str] = []
        self._wake: Callable[[], None] = lambda: None  #: ends the loop's wait (set by `run`)
        self.health = Health(say=self.console.warn, on_change=self._health_changed, clock=clock)
        self._info_due = False  #: daemon.json should be rewritten (what fails changed, or a write failed)
        self._info_retry_mono = 0.0
        self._next_state_check_mono = 0.0
        self.state_lost: str | None = None  #: what happened to the state folder, once it is gone
        self._ctx = Context(state=state, clock=clock, console=self.console, health=self.health,
                           wake=lambda: self._wake(), health_changed=self._health_changed,
                           exposure=Exposure(expose, self.console.warn), allow_hosts=allow_hosts,
                           make_functions=make_functions)

    # -- what tests and the faces reach -------------------------------------------------------------------

    @property
    def functions(self) -> Functions:
        return self.parts.functions.functions

    @property
    def dispatcher(self) -> Dispatcher:
        return self.parts.dispatcher.dispatcher

    @property
    def reload_watch(self) -> ReloadWatch:
        return self.parts.reload_watch.watch

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Build every part, then start them in order; the servers last, once "ready" is said."""
        self.state.lock()
        try:
            parts = self.parts = build(self.manifest, self._ctx)
        except BaseException:
            self.state.unlock()
            raise
        self._started_wall = self.clock.time()
        self._write_info()
        self.console.say(describe_manifest(self.manifest, self.state.path, parts.http.servers.addresses))
        for warning in self.manifest.warnings:
            self.console.warn(warning)
        for line in parts.damage:
            self.console.warn(line)
        if parts.waiting:
            self.console.say(f"resuming {parts.waiting} queued async event(s)")
        try:
            for part in parts.working:
                part.start()
        except BaseException:  # (the inotify watch limit, say): what started stops, the folder is freed
            self._abandon_start()
            raise
        elapsed_ms = (self.clock.monotonic() - self._started_mono) * 1000
        hint = f"save {self.manifest.file.name} or a handler to reload; Ctrl-C stops"
        self.console.say(f"ready in {elapsed_ms:.0f} ms ({hint})")
        parts.http.start()  # (the sockets already accept: uvicorn's import need not delay "ready")
        self.status = DaemonState.running

    def _abandon_start(self) -> None:
        """A part failed to start: stop every part, started or not, in reverse order, then unlock."""
        for part in reversed(self.parts.ordered):
            try:
                part.stop(force=True)
            except Exception:  # stopping the others matters more than this one's failure
                log.exception("stopping %s after a failed start failed", type(part).__name__)
        self.state.unlock()

    def run(self) -> int:
        """Start, serve until stopped, and return the exit code. Python `logging` goes to the
        console meanwhile (see `lambdad.console`): a loop guard's exception is not lost."""
        with console_logging(self.console), SignalInbox() as inbox:
            self._wake = inbox.wake
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

    def step(self, mono: float) -> float:
        """One round of housekeeping at monotonic time `mono`; returns the seconds until the next one is due."""
        if self.status is DaemonState.stopping:
            if self.functions.in_flight == 0 or mono >= self._stop_deadline_mono:
                self._finish(force=self.functions.in_flight > 0)
            return STOP_POLL_S
        wait = self.functions.reap_idle(mono)
        if mono >= self._next_state_check_mono:
            self._next_state_check_mono = mono + STATE_CHECK_S
            self._check_state()
            if self.status is DaemonState.stopping:
                return STOP_POLL_S
        wait = min(wait, max(0.0, self._next_state_check_mono - mono))
        if self._info_due and mono >= self._info_retry_mono:
            self._write_info()
        manifest_saved, code_changed = self.reload_watch.due(mono)
        if manifest_saved:
            self.reload("saved")
        if code_changed:
            self.recycle_code(code_changed)
        check = self.reload_watch.next_check(mono)
        return wait if check is None else min(wait, check)

    def handle_signal(self, sig: signal.Signals) -> None:
        if self.status is DaemonState.stopped:
            return  # e.g. `timeout` signals both the process and its group: the second one finds us done
        if sig is signal.SIGHUP:
            if self.status is DaemonState.running:
                self.reload("SIGHUP")
            return
        if self.status is DaemonState.stopping:
            self.console.say("forced stop: killing running invocations")
            self.exit_code = EXIT_INTERRUPTED
            self._finish(force=True)
            return
        self.begin_stop(sig.name)

    def begin_stop(self, why: str) -> None:
        """Graceful stop, first stage: every part stops taking work; what runs has the grace period."""
        self.status = DaemonState.stopping
        self._stop_deadline_mono = self.clock.monotonic() + self.grace_s
        for part in reversed(self.parts.ordered):
            part.drain()
        running = self.functions.in_flight
        wait = f"; waiting up to {self.grace_s:g}s for {running} running invocation(s)" if running else ""
        self.console.say(f"{why}: stopping{wait} (Ctrl-C again to force)")

    def _finish(self, force: bool) -> None:
        """Stop every part in reverse order (when forced, running work is ended first), then unlock."""
        if force:
            if self.functions.in_flight:
                self.console.say(f"grace period over: killing {self.functions.in_flight} running invocation(s)")
            for part in reversed(self.parts.ordered):
                part.drain()  # (a forced stop may come before the graceful one)
            for part in reversed(self.parts.ordered):
                part.end_running()
        for part in reversed(self.parts.ordered):
            part.stop(force)
        self.state.unlock()
        self.status = DaemonState.stopped
        self.console.say("stopped")

    # -- the state folder and daemon.json ---------------------------------------------------------------

    def _check_state(self) -> None:
        """Deleted or replaced under us, the state folder takes nothing more: commits would go into
        files nobody will read, and another daemon may start on the path. Stop, with an error."""
        store = self.parts.store.store
        reason = self.state.intact()
        reason = f"the state folder {self.state.path} {reason}" if reason else store.intact()
        if reason is None:
            return
        self.state_lost = reason
        store.refuse(f"{reason} while lambdad ran: lambdad is stopping and accepts nothing more")
        self.console.error(f"{reason} while lambdad ran: what it held (queued events, messages, indexes) is "
                         "gone with it; stopping and accepting nothing more (start lambdad again for a fresh state "
                         "folder)")
        self.exit_code = EXIT_ERROR
        self.begin_stop("state folder lost")

    def _write_info(self) -> None:
        """daemon.json (and running.yaml); never raises: a write that fails is said once and tried again."""
        if self.state_lost is not None:  # (a folder put in its place belongs to whoever made it)
            return
        self._info_due = False  # (before reading what fails: a change from now on asks for another write)
        info = daemon_info(self.manifest, self._started_wall, self.config_errors, self.parts.http.servers.addresses,
                           self.health.failures(), self.parts.sqs.poller.last_errors())
        try:
            if self.manifest.source:
                self.state.write_running(self.manifest.source)
            self.state.write_info(info)
        except OSError as e:
            self._info_due = True
            self._info_retry_mono = self.clock.monotonic() + self.health.failing("state", e)
        else:
            self.health.recovered("state")

    def _health_changed(self) -> None:
        """A part started or stopped failing (any thread): the loop rewrites daemon.json."""
        self._info_due = True
        self._info_retry_mono = 0.0
        self._wake()

    # -- hot reload -----------------------------------------------------------------------------------

    def reload(self, why: str) -> ManifestDiff | None:
        """Load the manifest again and apply only what changed; an invalid one changes nothing.
        Nothing here may raise into the loop (an exception there would stop the daemon)."""
        started_mono = self.clock.monotonic()
        new, problems, lines = reloading.load_new(self.manifest.file, why)
        if new is None:
            self._config_problems(problems)
            for line in lines:
                self.console.say(line)
            return None
        parts = self.parts
        try:
            change, restart_only = reloading.plan_change(
                self.manifest, new, lambda name, m: make_bucket_sync(
                    name, m, parts.store.store, parts.functions.functions, self._ctx))
            for part in parts.ordered:
                part.apply(change)
            self.manifest = change.manifest
        except reloading.Refused as e:  # before anything changed: as an invalid manifest
            self._config_problems([str(e)])
            self.console.say(f"reload ({why}): {e}; the previous configuration keeps running")
            return None
        except Exception as e:  # a bug or the machine (inotify, SQLite): say so, keep serving
            log.exception("applying the new manifest failed")
            self._config_problems([f"the new manifest was only partly applied: {e}; restart lambdad"])
            self.console.say(f"reload ({why}) failed: {e}; restart lambdad to be sure of its configuration")
            return None
        self._config_problems([])  # (also running.yaml: commands use it while a later save is broken)
        elapsed_ms = (self.clock.monotonic() - started_mono) * 1000
        self.console.say(f"reload ({why}): {change.diff.summary()} in {elapsed_ms:.0f} ms")
        if restart_only:
            self.console.warn(f"{', '.join(restart_only)} changed: takes effect when lambdad is restarted")
        for warning in change.manifest.warnings:
            self.console.warn(warning)
        return change.diff

    def _config_problems(self, problems: list[str]) -> None:
        """Recorded in daemon.json, for `status` and the commands, and running.yaml after a good save."""
        self.config_errors = problems
        try:
            self._write_info()
        except OSError as e:  # a full disk must not turn a reload into a stop
            log.warning("cannot write daemon.json in %s: %s", self.state.path, e)

    def recycle_code(self, folders: dict[str, set[str]]) -> None:
        """Code changed: those functions' next invocations start cold on it; others stay warm."""
        names = reloading.functions_of(self.manifest, folders)
        if not names:
            return
        for path in set().union(*folders.values()):
            reloading.forget_bytecode(path)
        ended = self.functions.recycle(names)
        where = ", ".join(os.path.relpath(f) for f in folders)
        self.console.say(f"code changed in {where}: {', '.join(names)} will start cold on the new code "
                         f"({ended} warm environment(s) recycled)")
