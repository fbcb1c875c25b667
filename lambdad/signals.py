"""Signal handling that only records: handlers append to an inbox, the main loop acts on it.

`set_wakeup_fd` makes a signal wake the loop's `select` at once, so the loop can sleep for as
long as its next timer allows and still react to Ctrl-C immediately.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterable
from types import FrameType, TracebackType


class SignalInbox:
    """Context manager: install recording handlers for `signals`, restore the old ones on exit."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> None:
        self.signals = tuple(signals)
        self._received: list[signal.Signals] = []
        self._old: dict[signal.Signals, object] = {}
        self._old_wakeup = -1
        self._r = self._w = -1

    def __enter__(self) -> SignalInbox:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._old_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        for sig in self.signals:
            self._old[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._r)
        os.close(self._w)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._received.append(signal.Signals(signum))

    def wait(self, timeout_s: float) -> None:
        """Sleep until `timeout_s` passes or a signal arrives."""
        if not self._received:
            with contextlib.suppress(InterruptedError):
                select.select([self._r], [], [], max(0.0, timeout_s))
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def wake(self) -> None:
        """From another thread: end the current `wait` now (something needs the loop's attention)."""
        with contextlib.suppress(OSError):  # a full pipe already wakes it; a closed one has no loop
            os.write(self._w, b"\0")

    def take(self) -> list[signal.Signals]:
        received, self._received = self._received, []
        return received
