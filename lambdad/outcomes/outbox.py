"""The outbox's writer: files that outcomes committed (records, dead letters) written to their folders.

A file cannot be part of a SQLite transaction, so an outcome commits the file to the outbox and
this loop writes it afterwards (to a temporary name, then renamed). It is woken by whoever
committed a file (`Deliverer.committed`), and looks on its own every `POLL_S` as well. A folder
that cannot be written is retried with backoff, never dropped; a write refused because it would
leave its folder (a link inside it) is said once and looked at again quietly until the link is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from lambdad.backoff import backoff
from lambdad.clock import Clock
from lambdad.health import Health
from lambdad.loops import Loop
from lambdad.safefiles import UnsafePath, write_inside
from lambdad.store import Store, outbox

log = logging.getLogger(__name__)

#: A folder that cannot be written is retried after 1 s, 2 s, 4 s ... at most this long apart.
MAX_DELIVERY_WAIT_S = 300.0
#: Longest sleep between rounds (a wake can arrive just before the commit it announces).
POLL_S = 0.25


class Outbox:
    def __init__(self, store: Store, clock: Clock, warn: Callable[[str], None] | None = None,
                 health: Health | None = None) -> None:
        self.store = store
        self._warn = warn or log.warning
        self.loop = Loop("outbox", self.step, clock, health or Health())

    def start(self) -> None:
        self.loop.start()

    def wake(self) -> None:
        """Files were committed: write them now."""
        self.loop.wake()

    def stop(self) -> None:
        self.loop.stop()

    def step(self, now: float) -> float:
        """Write the due files; return seconds until the next is due (at most `POLL_S`)."""
        self.deliver(now)
        with self.store.reading() as tx:
            next_due = outbox.next_due(tx)
        return POLL_S if next_due is None else max(0.0, min(POLL_S, next_due - now))

    def deliver(self, now: float) -> None:
        with self.store.reading() as tx:
            pending = outbox.due(tx, now)
        for item in pending:
            try:
                write_inside(Path(item.folder), item.name, item.content)
            except UnsafePath as e:
                # It cannot succeed while the link is there: said once (the reason is kept with the file),
                # and the file is kept, not dropped: looked at again quietly, it is written once the link is gone.
                if item.last_error != str(e):
                    self._warn(f"{item.function}: not written: {e}; the file is kept in the state folder and "
                               f"written once that is fixed (looked at every {MAX_DELIVERY_WAIT_S:.0f}s)")
                with self.store.transaction() as tx:
                    outbox.failed(tx, item.id, str(e), now + MAX_DELIVERY_WAIT_S)
            except OSError as e:
                wait = backoff(item.attempts + 1, 1.0, MAX_DELIVERY_WAIT_S)  # (1 s, 2 s, 4 s ...)
                self._warn(f"{item.function}: cannot write {Path(item.folder) / item.name}: {e.strerror}; "
                           f"retrying in {wait:.0f}s")
                with self.store.transaction() as tx:
                    outbox.failed(tx, item.id, str(e), now + wait)
            else:
                with self.store.transaction() as tx:
                    outbox.done(tx, item.id)
