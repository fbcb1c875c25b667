"""The one shape of every background thread: `step(now) -> seconds to wait`, woken early on demand.

A component keeps its logic in a `step(now)` that a test calls with a fake clock's time; `Loop`
is the only code that owns a thread, sleeps, and survives a failed round. A round that raises is
reported to `Health` (one backoff policy, said once on the console, shown by `lambdad status`),
and the thread goes on; the next good round reports the recovery.

`now` is always wall-clock seconds (`Clock.time()`): it is what due times in the store are
compared with. Code that needs monotonic time takes it from the same `Clock`, by that name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lambdad.clock import Clock
from lambdad.health import Health

#: How long `stop` waits for a round in progress to finish.
JOIN_S = 10.0


class Loop:
    def __init__(self, name: str, step: Callable[[float], float], clock: Clock, health: Health,
                 component: str | None = None) -> None:
        """`component` is the name `Health` reports the loop under (default: `name`)."""
        self.name = name
        self._step = step
        self._clock = clock
        self._health = health
        self._component = component or name
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """From any thread: run the next round now (something was put, a slot came free)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = JOIN_S) -> None:
        """End the loop after the round in progress; idempotent."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        wait = 0.0
        while not self._stopping.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self._stopping.is_set():
                return
            wait = self.run_once()

    def run_once(self) -> float:
        """One round on the caller's thread; returns the wait before the next (never raises)."""
        try:
            wait = self._step(self._clock.time())
        except Exception as e:  # the thread must survive anything one round does (a full disk)
            return self._health.failing(self._component, e)
        self._health.recovered(self._component)
        return max(0.0, wait)
