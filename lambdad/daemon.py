"""`lambdad up`: build everything from the manifest, run until a signal, stop in stages.

The main thread owns the loop: `step(now)` does one round of housekeeping and says how long to
sleep; signals only land in an inbox that the loop reads. Shutdown is graceful first (stop taking
work, let running invocations finish within the grace period), forced on a second signal.

The loop also checks, once a second, that the state folder and its store are still the ones it
opened: deleted or replaced, nothing accepted from then on could be kept, so the daemon stops
accepting work and exits with an error. And it rewrites daemon.json when a part starts or stops
failing (`lambdad.health`), which is how `lambdad status` knows.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lambdad import __version__
from lambdad.buckets.sync import BucketSync, bucket_root
from lambdad.buckets.watch import BucketWatcher
from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.console import Console, console_logging
from lambdad.dispatcher import Dispatcher
from lambdad.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, LambdadError, ManifestError
from lambdad.health import Health
from lambdad.http.api import LambdaApi
from lambdad.http.guard import Guard
from lambdad.http.kinesis_api import KinesisApi
from lambdad.http.listener import ListenerApp
from lambdad.http.server import HttpServers, bind, is_loopback
from lambdad.http.sqs_api import SqsApi
from lambdad.logs import LogBook
from lambdad.manifest import load_manifest
from lambdad.manifest.diff import ManifestDiff, manifest_diff, pin_restart_only
from lambdad.manifest.model import ApiTrigger, Endpoint, Manifest, ScheduleTrigger, TargetKind
from lambdad.reload import ReloadWatch
from lambdad.runtime.functions import Functions
from lambdad.services.queues import Queues
from lambdad.signals import SignalInbox
from lambdad.sources.sqs import SqsPoller
from lambdad.sources.streams import StreamPoller
from lambdad.statedir import StateDir
from lambdad.store import Durability, Store, events
from lambdad.store.db import STORE_FILE
from lambdad.store.salvage import set_aside_damage
from lambdad.summary import describe_manifest

if TYPE_CHECKING:
    from lambdad.schedules.service import Schedules

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


def forget_bytecode(path: str) -> None:
    """Remove the cached bytecode of a changed module (or of every module in a folder that appeared).
    A .pyc records its source's mtime in whole seconds and its size, so a second save within the
    same second (same size) would otherwise run the first save's code."""
    sources = [Path(path)] if path.endswith(".py") else Path(path).rglob("*.py") if os.path.isdir(path) else []
    for source in sources:
        with contextlib.suppress(OSError, ValueError):
            os.unlink(importlib.util.cache_from_source(str(source)))


class _Refused(Exception):
    """A reload that cannot be applied, found before anything changed."""


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
        expose: bool = False,
        allow_hosts: tuple[str, ...] = (),
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
        self.queues: Queues | None = None
        self.sqs: SqsPoller | None = None
        self.streams: StreamPoller | None = None
        self.reload_watch: ReloadWatch | None = None
        #: While the manifest on disk is invalid: its problems (the previous configuration runs on).
        self.config_errors: list[str] = []
        self._wake: Callable[[], None] = lambda: None  #: ends the loop's wait (set by `run`)
        self._make_functions = make_functions
        self.expose = expose  #: may the API and listeners bind to addresses other than loopback
        self.allow_hosts = allow_hosts  #: host names the API answers for besides the local ones (--allow-host)
        self.http = HttpServers(getattr(manifest.api, "limits", None))
        self.api: LambdaApi | None = None
        self.listeners: dict[str, ListenerApp] = {}
        self._http_pool: ThreadPoolExecutor | None = None
        self.health = Health(say=self._warn, on_change=self._health_changed, wall=clock.time)
        self._info_due = False  #: daemon.json should be rewritten (what fails changed, or a write failed)
        self._info_retry_at = 0.0
        self._next_state_check = 0.0
        self.state_lost: str | None = None  #: what happened to the state folder, once it is gone

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.state.lock()
        sockets = self._bind_endpoints()  # first: a port in use is a start-up error
        self.console.width = max((len(n) for n in self.manifest.functions), default=8)
        damage = set_aside_damage(self.state.path / STORE_FILE, self.clock.time(), used_before=self.state.was_used)
        logbook = LogBook(self.state.logs, echo=self.console.function_line, health=self.health)
        self.functions = self._make_functions(self.manifest, logbook, self.clock)
        # Zygotes start in the background: "ready" should not wait for an interpreter to boot.
        threading.Thread(target=self._start_runtimes, name="runtimes", daemon=True).start()
        self.store = Store.in_state_folder(self.state.path, Durability(self.manifest.durability))
        with self.store.reading() as tx:
            waiting = sum(c.queued + c.retrying + c.in_flight for c in events.counts(tx).values())
        self.dispatcher = Dispatcher(self.store, self.functions, self.clock, on_warning=self._warn,
                                     health=self.health)
        self.queues = Queues(self.store, self.clock, self.manifest,
                             on_sent=lambda: self.sqs.poke() if self.sqs is not None else None)
        self.sqs = SqsPoller(self.manifest, self.queues, self.functions, self.clock, health=self.health,
                             on_error=self._health_changed)
        self.streams = StreamPoller(self.manifest, self.store, self.functions, self.clock,
                                    on_files=self.dispatcher.poke, health=self.health)
        syncs = [
            BucketSync(b, self.manifest, self.store, self.clock, warn=self._warn,
                       on_created=self.functions.recent.file_event)
            for b in self.manifest.buckets.values()
            if bucket_root(b)
        ]
        self.buckets = BucketWatcher(syncs, self.store, warn=self._warn, on_commit=self.dispatcher.poke,
                                     health=self.health)
        self.schedules = self._make_schedules()
        self._serve_http(sockets)
        self._started_wall = self.clock.time()
        self._write_info()
        self.console.say(describe_manifest(self.manifest, self.state.path, self.http.addresses))
        for warning in self.manifest.warnings:
            self._warn(warning)
        for line in damage:
            self._warn(line)
        if waiting:
            self.console.say(f"resuming {waiting} queued async event(s)")
        self.dispatcher.start()
        self.sqs.start()
        self.streams.start()
        self.buckets.start()
        if self.schedules is not None:
            self.schedules.start()
        self.reload_watch = ReloadWatch(self.manifest.file, wake=lambda: self._wake(), monotonic=self.clock.monotonic)
        self.reload_watch.start(*self._code_folders())
        elapsed_ms = (time.monotonic() - self._started_at) * 1000
        hint = f"save {self.manifest.file.name} or a handler to reload; Ctrl-C stops"
        self.console.say(f"ready in {elapsed_ms:.0f} ms ({hint})")
        # After "ready": the sockets already accept, and uvicorn's import (100 ms) need not delay it.
        self.http.start()
        self.status = DaemonState.running

    def _make_schedules(self) -> Schedules | None:
        """APScheduler is imported only when the manifest has schedules (it costs 85 ms of start-up)."""
        if not any(isinstance(t, ScheduleTrigger) for fn in self.manifest.functions.values() for t in fn.events):
            return None
        from lambdad.schedules.service import Schedules

        assert self.store is not None and self.dispatcher is not None
        return Schedules(self.manifest, self.store, self.clock, on_commit=self.dispatcher.poke, health=self.health,
                         warn=self._warn)

    # -- http -----------------------------------------------------------------------------------------

    def _endpoint_allowed(self, what: str, endpoint: Endpoint) -> None:
        if is_loopback(endpoint.host):
            return
        if not self.expose:
            raise LambdadError(f"{what} would listen on {endpoint.host}, which is not a loopback address: anyone who "
                               "can reach it could run your functions; pass --expose to allow it")
        self._warn(f"{what} listens on {endpoint.host}: anyone who can reach it can run your functions")

    def _bind_endpoints(self) -> dict[str, socket.socket]:
        endpoints = {"api": ("the API", self.manifest.api)}
        endpoints |= {f"listener:{n}": (f"listener {n!r}", li.endpoint) for n, li in self.manifest.listeners.items()}
        sockets: dict[str, socket.socket] = {}
        try:
            for key, (what, endpoint) in endpoints.items():
                self._endpoint_allowed(what, endpoint)
                sockets[key] = bind(endpoint, what)
        except LambdadError:
            for sock in sockets.values():
                sock.close()
            self.state.unlock()
            raise
        return sockets

    def _serve_http(self, sockets: dict[str, socket.socket]) -> None:
        assert self.functions is not None and self.dispatcher is not None
        self._http_pool = ThreadPoolExecutor(max_workers=self.manifest.concurrency + 4, thread_name_prefix="http")
        assert self.store is not None and self.queues is not None
        sqs_api = SqsApi(self.queues, self._http_pool)
        assert self.streams is not None
        kinesis_api = KinesisApi(self.manifest, self.store, self._http_pool, self.clock.time(),
                                 on_put=self.streams.poke)
        api = self.manifest.api
        self.api = LambdaApi(self.manifest, self.functions, self.dispatcher, self._http_pool,
                             python_version=self.functions.python_version, sqs=sqs_api, kinesis=kinesis_api,
                             guard=Guard.of(api.host, self.allow_hosts, getattr(api, "allow_origins", ())),
                             warn=self._warn)
        self.http.add("api", sockets.pop("api"), self.api)
        for key, sock in sockets.items():
            self._add_listener(key.removeprefix("listener:"), sock)

    def _add_listener(self, name: str, sock: socket.socket) -> None:
        assert self.functions is not None and self._http_pool is not None
        app = ListenerApp(name, self.manifest, self.functions, self._http_pool)
        app.port = sock.getsockname()[1]
        self.listeners[name] = app
        self.http.add(f"listener:{name}", sock, app)

    def _code_folders(self) -> tuple[list[Path], list[Path]]:
        """The functions' code folders, and what lambdad itself writes that may sit inside one of
        them (the state folder, buckets, folder targets): changes there are not code changes."""
        m = self.manifest
        written = [self.state.path, *(b.path for b in m.buckets.values())]
        for fn in m.functions.values():
            cfg = fn.async_config
            written += [Path(t.name) for t in (cfg.dead_letter, cfg.on_success, cfg.on_failure)
                        if t is not None and t.kind is TargetKind.folder]
        return [fn.code for fn in m.functions.values()], written

    def _write_info(self) -> None:
        """daemon.json (and running.yaml); never raises: a write that fails is said once and tried again."""
        if self.state_lost is not None:  # (a folder put in its place belongs to whoever made it)
            return
        self._info_due = False  # (before reading what fails: a change from now on asks for another write)
        info: dict[str, object] = {
            "pid": os.getpid(),
            "version": __version__,
            "manifest": str(self.manifest.file),
            "started": self._started_wall,
            "config": "stale" if self.config_errors else "current",
            "api": self.http.addresses.get("api"),
            "listeners": {k.removeprefix("listener:"): v for k, v in self.http.addresses.items() if k != "api"},
            "urls": {fn.name: self.http.addresses.get(f"listener:{t.listener}")
                     for fn in self.manifest.functions.values()
                     for t in fn.events if isinstance(t, ApiTrigger) and t.function_url},
        }
        if self.config_errors:
            info["config_errors"] = self.config_errors
        failing = {name: {"error": f.error, "since": f.since, "attempts": f.attempts}
                   for name, f in self.health.failures().items() if name != "state"}
        if failing:
            info["failing"] = failing
        sqs_errors = self.sqs.last_errors() if self.sqs is not None else {}
        if sqs_errors:
            info["sqs_mappings"] = sqs_errors
        try:
            if self.manifest.source:
                self.state.write_running(self.manifest.source)
            self.state.write_info(info)
        except OSError as e:
            self._info_due = True
            self._info_retry_at = self.clock.monotonic() + self.health.failing("state", e)
        else:
            self.health.recovered("state")

    def _health_changed(self) -> None:
        """A part started or stopped failing (any thread): the loop rewrites daemon.json."""
        self._info_due = True
        self._info_retry_at = 0.0
        self._wake()

    def _warn(self, message: str) -> None:
        self.console.say(f"warning: {message}")

    def _start_runtimes(self) -> None:
        assert self.functions is not None
        try:
            problems = self.functions.start_runtimes()
        except Exception as e:  # a thread that dies silently: functions would start cold, unexplained
            log.exception("starting the runtimes failed")
            problems = [f"starting the runtimes failed: {e}; each function starts cold at its first invocation"]
        for problem in problems:
            self.console.say(f"warning: {problem}")

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

    def step(self, now: float) -> float:
        """One round of housekeeping; returns the seconds until the next one is due."""
        assert self.functions is not None
        if self.status is DaemonState.stopping:
            if self.functions.in_flight == 0 or now >= self._stop_deadline:
                self._finish(force=self.functions.in_flight > 0)
            return STOP_POLL_S
        wait = self.functions.step(now)
        if now >= self._next_state_check:
            self._next_state_check = now + STATE_CHECK_S
            self._check_state()
            if self.status is DaemonState.stopping:
                return STOP_POLL_S
        wait = min(wait, max(0.0, self._next_state_check - now))
        if self._info_due and now >= self._info_retry_at:
            self._write_info()
        if self.reload_watch is not None:
            manifest_saved, code_changed = self.reload_watch.due(now)
            if manifest_saved:
                self.reload("saved")
            if code_changed:
                self.recycle_code(code_changed)
            check = self.reload_watch.next_check(now)
            if check is not None:
                wait = min(wait, check)
        return wait

    def _check_state(self) -> None:
        """Deleted or replaced under us, the state folder takes nothing more: commits would go into
        files nobody will read, and another daemon may start on the path. Stop, with an error."""
        assert self.store is not None
        reason = self.state.intact()
        reason = f"the state folder {self.state.path} {reason}" if reason else self.store.intact()
        if reason is None:
            return
        self.state_lost = reason
        self.store.refuse(f"{reason} while lambdad ran: lambdad is stopping and accepts nothing more")
        self.console.say(f"error: {reason} while lambdad ran: what it held (queued events, messages, indexes) is "
                         "gone with it; stopping and accepting nothing more (start lambdad again for a fresh state "
                         "folder)")
        self.exit_code = EXIT_ERROR
        self.begin_stop("state folder lost")

    # -- hot reload -----------------------------------------------------------------------------------

    def reload(self, why: str) -> ManifestDiff | None:
        """Load the manifest again and apply only what changed; an invalid one changes nothing."""
        # Whatever the file holds, and whatever fails below, the daemon goes on serving: nothing
        # here may raise into the loop (an exception there would stop the daemon).
        started = time.monotonic()
        file = self.manifest.file

        def config_problems(problems: list[str]) -> None:
            """Recorded in daemon.json, for `status` and the commands, and running.yaml after a good save."""
            self.config_errors = problems
            try:
                self._write_info()
            except OSError as e:  # a full disk must not turn a reload into a stop
                log.warning("cannot write daemon.json in %s: %s", self.state.path, e)

        try:
            new = load_manifest(file)
        except ManifestError as e:
            config_problems(e.problems)
            self.console.say(f"reload ({why}): {len(e.problems)} problem(s); the previous configuration "
                             "keeps running until the manifest is fixed:")
            for line in e.problems:
                self.console.say(line)
            return None
        except Exception as e:  # a bug in validation: the manifest is as good as invalid; say so
            log.exception("loading the manifest failed")
            problem = (f"{file.name}: the manifest could not be loaded ({type(e).__name__}: {e}); please report "
                       "this as a bug in lambdad")
            config_problems([problem])
            self.console.say(f"reload ({why}): {problem}; the previous configuration keeps running")
            return None
        try:
            new, restart_only = pin_restart_only(self.manifest, new)
            diff = manifest_diff(self.manifest, new)
            self._apply(new, diff)
        except _Refused as e:  # before anything changed: as an invalid manifest
            config_problems([str(e)])
            self.console.say(f"reload ({why}): {e}; the previous configuration keeps running")
            return None
        except Exception as e:  # a bug or the machine (inotify, SQLite): say so, keep serving
            log.exception("applying the new manifest failed")
            config_problems([f"the new manifest was only partly applied: {e}; restart lambdad"])
            self.console.say(f"reload ({why}) failed: {e}; restart lambdad to be sure of its configuration")
            return None
        config_problems([])  # (also running.yaml: commands use it while a later save is broken)
        elapsed_ms = (time.monotonic() - started) * 1000
        self.console.say(f"reload ({why}): {diff.summary()} in {elapsed_ms:.0f} ms")
        if restart_only:
            self._warn(f"{', '.join(restart_only)} changed: takes effect when lambdad is restarted")
        for warning in new.warnings:
            self._warn(warning)
        return diff

    def _apply(self, new: Manifest, diff: ManifestDiff) -> None:
        """Each part gets only its own changes; unchanged triggers are not touched."""
        assert self.functions and self.dispatcher and self.buckets and self.store and self.reload_watch
        new_syncs = []
        for name in diff.buckets_added + diff.buckets_changed:  # what can fail comes first
            try:
                bucket_root(new.buckets[name])
            except OSError as e:
                raise _Refused(f"bucket {name}: cannot create {new.buckets[name].path}: {e.strerror}") from None
            new_syncs.append(BucketSync(new.buckets[name], new, self.store, self.clock, warn=self._warn,
                                        on_created=self.functions.recent.file_event))
        self.functions.apply(new, diff)
        self.dispatcher.apply(new)
        if self.queues is not None:
            self.queues.apply(new)
        if self.sqs is not None:
            self.sqs.apply(new)
        if self.streams is not None:
            self.streams.apply(new)
        rewatched = set(diff.buckets_removed + diff.buckets_changed)
        for sync in self.buckets.syncs():
            if sync.name not in rewatched:
                sync.retarget(new)
        self.buckets.apply(list(rewatched), new_syncs)
        self.manifest = new
        if self.schedules is not None:
            self.schedules.apply(new, diff.rules_added, diff.rules_removed, diff.rules_changed)
        elif diff.rules_added:
            self.schedules = self._make_schedules()
            if self.schedules is not None:
                self.schedules.start()
        self._apply_listeners(new, diff)
        self.reload_watch.watch_code(*self._code_folders())
        self.console.width = max((len(n) for n in new.functions), default=8)

    def _apply_listeners(self, new: Manifest, diff: ManifestDiff) -> None:
        """A listener whose address changed is served anew; the others only get the new rules."""
        assert self.api is not None
        self.api.manifest = new
        if self.api.kinesis is not None:
            self.api.kinesis.manifest = new
        for name in diff.listeners_removed + diff.listeners_changed:
            self.http.remove(f"listener:{name}")
            self.listeners.pop(name, None)
        for name in diff.listeners_added + diff.listeners_changed:
            what, endpoint = f"listener {name!r}", new.listeners[name].endpoint
            try:
                self._endpoint_allowed(what, endpoint)
                self._add_listener(name, bind(endpoint, what))
            except LambdadError as e:
                self._warn(f"{e} (not served until fixed)")
                continue
            url_of, address = new.listeners[name].url_of, self.http.addresses.get(f"listener:{name}")
            self.console.say(f"function URL of {url_of}: {address}/" if url_of else f"listener {name}: {address}")
        for app in self.listeners.values():
            app.update(new)
        if diff.listeners_added or diff.listeners_removed or diff.listeners_changed:
            self._write_info()

    def recycle_code(self, folders: dict[str, set[str]]) -> None:
        """Code changed: those functions' next invocations start cold on it; others stay warm."""
        assert self.functions is not None
        names = [fn.name for fn in self.manifest.functions.values() if os.path.realpath(fn.code) in folders]
        if not names:
            return
        for path in set().union(*folders.values()):
            forget_bytecode(path)
        ended = self.functions.recycle(names)
        where = ", ".join(os.path.relpath(f) for f in folders)
        self.console.say(f"code changed in {where}: {', '.join(names)} will start cold on the new code "
                         f"({ended} warm environment(s) recycled)")

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
        assert self.functions is not None and self.dispatcher is not None
        self.status = DaemonState.stopping
        self.dispatcher.stop_claiming()
        if self.sqs is not None:
            self.sqs.stop_receiving()
        if self.streams is not None:
            self.streams.stop_receiving()
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
            if force:  # running invocations end now, so that HTTP requests waiting on them are answered
                if self.dispatcher is not None:
                    self.dispatcher.abandon()  # killed async invocations run again at the next start
                self.functions.kill_running()
            self.http.stop()  # no new requests; those still in progress get a few seconds
            if self._http_pool is not None:
                self._http_pool.shutdown(wait=False)
            if self.reload_watch is not None:
                self.reload_watch.stop()
            if self.schedules is not None:
                self.schedules.stop()
            if self.buckets is not None:
                self.buckets.stop()
            if self.sqs is not None:
                self.sqs.stop(wait=not force)
            if self.streams is not None:
                self.streams.stop(wait=not force)
            if self.dispatcher is not None:
                self.dispatcher.close()
            self.functions.close(force=force)
        if self.store is not None:
            self.store.close()
        self.state.unlock()
        self.status = DaemonState.stopped
        self.console.say("stopped")
