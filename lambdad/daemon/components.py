"""One lifecycle for every part of the daemon: `start`, `apply(change)`, `drain`, `end_running`, `stop(force)`.

Each part keeps its own method names (`apply(new, diff)`, `stop_receiving`, `close`, ...); the
adapters here translate the one protocol into them, so the daemon starts, reloads and stops its
parts in one loop each, in order, and a new part is one adapter more.

`drain()` is the first stage of a stop: take no new work; what runs may finish (the daemon waits
out the grace period). `end_running()` comes only when the grace period is over or the stop is
forced: running invocations are killed now (and async ones put back for the next start).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lambdad.console import Console
from lambdad.daemon.watch import ReloadWatch
from lambdad.dispatcher import Dispatcher
from lambdad.manifest.diff import ManifestDiff
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import Functions
from lambdad.store import Store
from lambdad.triggers.buckets.sync import BucketSync
from lambdad.triggers.buckets.watch import BucketWatcher
from lambdad.triggers.mappings.sqs import SqsPoller
from lambdad.triggers.mappings.streams import StreamPoller

if TYPE_CHECKING:
    from lambdad.triggers.schedules.service import Schedules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One reload as every part sees it: the new manifest, what changed, and what had to be made
    before anything changed (so that a reload that cannot be applied changes nothing)."""

    manifest: Manifest
    diff: ManifestDiff
    #: A new sync for each bucket added or changed (its folder exists by now).
    bucket_syncs: Mapping[str, BucketSync]


class Component(Protocol):
    def start(self) -> None: ...

    def apply(self, change: Change) -> None: ...

    def drain(self) -> None: ...

    def end_running(self) -> None: ...

    def stop(self, force: bool) -> None: ...


class Applies(Protocol):
    def apply(self, manifest: Manifest) -> None: ...


class Part:
    """A component with nothing to do at some stages (each adapter overrides what it needs)."""

    def start(self) -> None:
        pass

    def apply(self, change: Change) -> None:
        pass

    def drain(self) -> None:
        pass

    def end_running(self) -> None:
        pass

    def stop(self, force: bool) -> None:
        pass


class ServicesPart(Part):
    """The domain services that hold the manifest (queue settings): the new one before any poller
    or face uses it."""

    def __init__(self, *services: Applies) -> None:
        self.services = services

    def apply(self, change: Change) -> None:
        for service in self.services:
            service.apply(change.manifest)


class StorePart(Part):
    """Opened first, closed last: every other part commits through it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def stop(self, force: bool) -> None:
        self.store.close()


class ConsolePart(Part):
    """Function names are padded to the longest one, so the `name | line` columns stay aligned."""

    def __init__(self, console: Console, manifest: Manifest) -> None:
        self.console = console
        self._manifest = manifest

    def start(self) -> None:
        self._align(self._manifest)

    def apply(self, change: Change) -> None:
        self._align(change.manifest)

    def _align(self, manifest: Manifest) -> None:
        self.console.width = max((len(n) for n in manifest.functions), default=8)


class FunctionsPart(Part):
    def __init__(self, functions: Functions, warn: Callable[[str], None]) -> None:
        self.functions = functions
        self._warn = warn

    def start(self) -> None:
        # Zygotes start in the background: "ready" should not wait for an interpreter to boot.
        threading.Thread(target=self._start_runtimes, name="runtimes", daemon=True).start()

    def _start_runtimes(self) -> None:
        try:
            problems = self.functions.start_runtimes()
        except Exception as e:  # a thread that dies silently: functions would start cold, unexplained
            log.exception("starting the runtimes failed")
            problems = [f"starting the runtimes failed: {e}; each function starts cold at its first invocation"]
        for problem in problems:
            self._warn(problem)

    def apply(self, change: Change) -> None:
        self.functions.apply(change.manifest, change.diff)

    def drain(self) -> None:
        self.functions.stop_accepting()

    def end_running(self) -> None:
        self.functions.kill_running()  # (so HTTP requests in flight get answers)

    def stop(self, force: bool) -> None:
        self.functions.close(force=force)


class DispatcherPart(Part):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def start(self) -> None:
        self.dispatcher.start()

    def apply(self, change: Change) -> None:
        self.dispatcher.apply(change.manifest)

    def drain(self) -> None:
        self.dispatcher.stop_claiming()

    def end_running(self) -> None:
        self.dispatcher.abandon()  # killed async invocations run again at the next start

    def stop(self, force: bool) -> None:
        self.dispatcher.close()


class PollerPart(Part):
    """An event source mapping's poller (SQS or stream): batches in flight finish unless forced."""

    def __init__(self, poller: SqsPoller | StreamPoller) -> None:
        self.poller = poller

    def start(self) -> None:
        self.poller.start()

    def apply(self, change: Change) -> None:
        self.poller.apply(change.manifest)

    def drain(self) -> None:
        self.poller.stop_receiving()

    def stop(self, force: bool) -> None:
        self.poller.stop(wait=not force)


class BucketsPart(Part):
    def __init__(self, watcher: BucketWatcher) -> None:
        self.watcher = watcher

    def start(self) -> None:
        self.watcher.start()

    def apply(self, change: Change) -> None:
        """A bucket whose folder or settings changed is watched anew; the others only get the new triggers."""
        diff = change.diff
        rewatched = set(diff.buckets_removed + diff.buckets_changed)
        for sync in self.watcher.syncs():
            if sync.name not in rewatched:
                sync.retarget(change.manifest)
        new_syncs = [change.bucket_syncs[name] for name in diff.buckets_added + diff.buckets_changed]
        self.watcher.apply(list(rewatched), new_syncs)

    def stop(self, force: bool) -> None:
        self.watcher.stop()


class SchedulesPart(Part):
    """APScheduler is made only once a manifest has schedules (its import costs 85 ms of start-up):
    `make` returns None for a manifest without any."""

    def __init__(self, make: Callable[[Manifest], Schedules | None], manifest: Manifest) -> None:
        self._make = make
        self.schedules = make(manifest)

    def start(self) -> None:
        if self.schedules is not None:
            self.schedules.start()

    def apply(self, change: Change) -> None:
        diff = change.diff
        if self.schedules is not None:
            self.schedules.apply(change.manifest, diff.rules_added, diff.rules_removed, diff.rules_changed)
        elif diff.rules_added:
            self.schedules = self._make(change.manifest)
            self.start()

    def stop(self, force: bool) -> None:
        if self.schedules is not None:
            self.schedules.stop()


class ReloadWatchPart(Part):
    """Watches the manifest and the functions' code folders (whichever folders the manifest names now)."""

    def __init__(self, watch: ReloadWatch, manifest: Manifest,
                 folders: Callable[[Manifest], tuple[list[Path], list[Path]]]) -> None:
        self.watch = watch
        self._manifest = manifest
        self._folders = folders

    def start(self) -> None:
        self.watch.start(*self._folders(self._manifest))

    def apply(self, change: Change) -> None:
        self.watch.watch_code(*self._folders(change.manifest))

    def stop(self, force: bool) -> None:
        self.watch.stop()
