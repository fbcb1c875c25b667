"""What every event source mapping's poller shares: a `Loop` that runs rounds until stopped (woken
early by `wake`), the mappings a reload replaces, and a periodic pass that drops expired items.

A subclass says which triggers are its mappings, what one round does for one mapping, and what
expiring means for its source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from lambdad.clock import Clock
from lambdad.health import Health
from lambdad.loops import Loop
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import Functions

log = logging.getLogger(__name__)

#: Items put by another process (the CLI) are noticed this fast.
POLL_S = 0.25
#: Expired messages and records are dropped this often.
EXPIRE_EVERY_S = 60.0


class Poller:
    name = "poller"  #: names the thread and the executor's threads
    min_wait_s = 0.002  #: the shortest sleep between rounds

    def __init__(self, manifest: Manifest, functions: Functions, clock: Clock, executor: Executor | None,
                 threads: int, health: Health | None = None) -> None:
        """Each subclass keeps the service it reads its source through (`Queues`, `Streams`)."""
        self.health = health or Health()
        self.manifest = manifest
        self.functions = functions
        self.clock = clock
        self.mappings: dict[Hashable, Any] = self.manifest_mappings(manifest)
        self._lock = threading.Lock()
        self._stop = threading.Event()  #: set by `stop`: a subclass's waits end early
        self._executor = executor or ThreadPoolExecutor(max_workers=threads, thread_name_prefix=self.name)
        self._loop = Loop(self.name, self.step, clock, self.health)
        self._next_expiry = 0.0

    # -- what a subclass says -------------------------------------------------------------------------

    @staticmethod
    def manifest_mappings(manifest: Manifest) -> dict[Hashable, Any]:
        raise NotImplementedError

    def _poll(self, manifest: Manifest, mapping: Any, now: float) -> float:
        """Start what is due for one mapping; return how long it may wait."""
        raise NotImplementedError

    def _expire(self, manifest: Manifest, now: float) -> None:
        raise NotImplementedError

    def _mappings_replaced(self) -> None:
        """Under the lock, after a reload replaced `self.mappings`."""

    def _note(self, function: str, message: str) -> None:
        self.functions.logbook.note(function, message)

    # -- life -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        """Something was put, or a batch finished: look now (from any thread)."""
        self._loop.wake()

    def apply(self, manifest: Manifest) -> None:
        """A reload: mappings added, removed or changed; batches in flight finish as they started."""
        with self._lock:
            self.manifest = manifest
            self.mappings = self.manifest_mappings(manifest)
            self._mappings_replaced()
        self._loop.wake()

    def stop_receiving(self) -> None:
        """A graceful stop: no new batches; those in flight finish."""
        with self._lock:
            self.mappings = {}

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        self._loop.stop()
        self._executor.shutdown(wait=wait)

    def step(self, now: float) -> float:
        """One round: start every batch that is due; return how long to sleep."""
        with self._lock:
            manifest, mappings = self.manifest, list(self.mappings.values())
        if now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY_S
            self._expire(manifest, now)
        wait = POLL_S
        for mapping in mappings:
            wait = min(wait, self._poll(manifest, mapping, now))
        return max(self.min_wait_s, wait)
