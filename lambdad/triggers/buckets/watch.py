"""The bucket watcher: one inotify instance for every bucket, and one loop applying what it reports.

The watches (`inotify.TreeWatch`) only say where to look; this loop turns each `Hint` into a
`BucketSync` call, in order, a batch per commit, and keeps the hints that must wait (a delete that
may be a replace, a weak name settling, a file scanned while still being written, the retry after a
failed commit). It runs on `lambdad.loops.Loop`: each hint wakes it, and `step(now)` drains what is
queued and returns the wait until the next of those is due.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable

from watchdog.observers.inotify_c import InotifyFD

from lambdad.clock import SYSTEM_CLOCK, Clock, filesystem_ns
from lambdad.health import Health
from lambdad.loops import Loop
from lambdad.store import Store
from lambdad.triggers.buckets.inotify import Hint, TreeWatch
from lambdad.triggers.buckets.sync import RECENT_S, BucketSync

log = logging.getLogger(__name__)

#: At most this many changes are applied in one transaction.
BATCH = 256
#: Past this many hints held by a failing store, they give way to one scan of each bucket they touch
#: (memory stays bounded however long the disk is full; a scan reconciles the folder with its index).
MAX_HELD = 10_000
#: A file deleted, or renamed onto a temporary or backup name, counts as deleted if it is still
#: gone after this long: tools that replace a file remove the old one first (`install` unlinks it,
#: vim and emacs rename it to NAME~) and create the new one at once, whose close is the one Put.
DELETE_SETTLE_S = 0.2
#: A file under a weak name (`rules.WEAK_NAMES`: `.env.backup`, `tmp_invoice.pdf`) is announced if it
#: is still there this long after its close: rsync, sed -i and tempfile + os.replace rename theirs
#: onto the final name within milliseconds, and that rename is then the one Put, for the final key.
WEAK_SETTLE_S = 1.0
#: File times come from the kernel's coarse clock, up to a tick (1-10 ms) behind `clock.filesystem_ns()`:
#: a file written just after the watch began can look older than the watch. Erring this way costs
#: at worst an extra event for a file changed just before a new bucket's first start, never a lost one.
FS_CLOCK_SLACK_NS = 50_000_000
#: Nothing is due: only a hint (`wake`) starts the next round before this.
IDLE_WAIT_S = 3600.0


class BucketWatcher:
    """All buckets: one inotify instance, one thread applying hints in order.

    A batch whose commit fails (a full disk) is not lost: its hints are held, and tried again, ahead
    of what came since, after a backoff, until a commit succeeds. Every hint is idempotent (the
    decision comes from the file as it is then), so trying one again announces nothing twice.
    """

    def __init__(
        self,
        syncs: list[BucketSync],
        store: Store,
        warn: Callable[[str], None] = log.warning,
        on_commit: Callable[[], None] = lambda: None,
        health: Health | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Hints wait on `clock`'s monotonic time (tests pass a fake one and drive `work` and `step`)."""
        self._on_commit = on_commit  #: called after each batch of changes is committed
        self._syncs = {s.root: s for s in syncs}
        self._store = store
        self._warn = warn
        self._health = health or Health()
        self._clock = clock
        self._queue: queue.SimpleQueue[tuple[BucketSync, Hint]] = queue.SimpleQueue()
        self._fd: InotifyFD | None = None
        self._watches: dict[str, TreeWatch] = {}
        #: (A failure of a round itself is reported apart from "buckets", which the store's failures and
        #: recoveries own: the loop's good rounds must not say the store works again.)
        self._loop = Loop("buckets", self.step, clock, self._health, component="buckets:loop")
        self._later: list[tuple[float, BucketSync, Hint]] = []  #: hints due at a (monotonic) time
        self._settle_at: dict[str, float] = {}  #: weak-named file -> when its latest close has settled
        self._held: list[tuple[BucketSync, Hint]] = []  #: hints of a batch whose commit failed
        self._retry_at = 0.0  #: when they are tried again
        self.idle = threading.Event()  #: set whenever the queue has been worked off (tests wait on it)

    def start(self, reconcile: bool = True) -> None:
        """Watch every bucket, then compare each with its index (the watch first: nothing slips between)."""
        self._fd = InotifyFD()
        self._fd.start()
        for sync in list(self._syncs.values()):
            self._watch(sync, reconcile)
        self._loop.start()

    def apply(self, gone: list[str], new: list[BucketSync]) -> None:
        """A reload: `gone` buckets (by name) stop being watched, `new` ones are watched and then
        compared with their index. The other buckets' watches never stop, so a file dropped into
        one of them during a reload is seen as at any other time."""
        for name in gone:
            for root, sync in list(self._syncs.items()):
                if sync.name == name:
                    del self._syncs[root]
                    watch = self._watches.pop(root, None)
                    if watch is not None:
                        watch.stop()
        for sync in new:
            self._watch(sync, reconcile=True)

    def syncs(self) -> list[BucketSync]:
        return list(self._syncs.values())

    def _watch(self, sync: BucketSync, reconcile: bool) -> None:
        assert self._fd is not None
        self._syncs[sync.root] = sync
        watch = TreeWatch(self._fd, sync.root, lambda hint, s=sync: self.report(s, hint), warn=self._warn,
                          clock=self._clock)
        sync.watching_since_ns = filesystem_ns() - FS_CLOCK_SLACK_NS  # on the file-system clock's side
        watch.start()
        self._watches[sync.root] = watch
        if reconcile:
            self.report(sync, Hint("startup", sync.root))

    def report(self, sync: BucketSync, hint: Hint) -> None:
        """From the inotify thread (or a round putting back what came due): apply `hint` soon."""
        self._queue.put((sync, hint))
        self._loop.wake()

    def stop(self) -> None:
        """Stop watching; the hints reported before are still applied (their events are committed)."""
        for watch in list(self._watches.values()):
            watch.stop()
        self._loop.stop()
        if not self._loop.running:  # (else a round is stuck: leave the rest to the startup scan)
            try:
                self.work(self._take())
            except Exception:
                log.exception("the bucket watcher could not apply its last hints; the next start rescans")
        if self._fd is not None:
            self._fd.stop()
            self._fd = None

    def step(self, now: float) -> float:
        """One round: apply up to BATCH queued hints, expire unpaired moves, queue the hints that came
        due; returns the seconds until the next of those (a new hint wakes the loop sooner).

        `now` is the loop's wall time; every wait here is on the clock's monotonic time.
        """
        try:
            self.work(self._take(BATCH))
        except Exception as e:  # the loop must survive anything; hints already held stay held
            self._retry_at = self._clock.monotonic() + self._health.failing("buckets", e)
        mono = self._clock.monotonic()
        watches = list(self._watches.values())  # a reload may change the dict meanwhile
        for watch in watches:
            if watch.has_pending_moves:
                watch.expire_moves(mono)
        self._recheck(mono)
        if (self._queue.empty() and not self._later and not self._held
                and not any(w.has_pending_moves for w in watches)):
            self.idle.set()
        else:
            self.idle.clear()
        return 0.0 if not self._queue.empty() else self._next_wait(mono, watches)

    def _take(self, limit: int | None = None) -> list[tuple[BucketSync, Hint]]:
        """What is queued, oldest first (at most `limit`)."""
        items: list[tuple[BucketSync, Hint]] = []
        while limit is None or len(items) < limit:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def work(self, items: list[tuple[BucketSync, Hint]]) -> None:
        """Apply `items` after the hints held from a failed commit, in order, a batch per commit;
        while the retry is not due, only add them to what is held."""
        mono = self._clock.monotonic()
        if self._held and mono < self._retry_at:
            self._held += items
            if len(self._held) > MAX_HELD:
                syncs = {id(sync): sync for sync, _ in self._held}.values()
                self._held = [(sync, Hint("scan", sync.root)) for sync in syncs]
            return
        pending, self._held = self._held + items, []
        while pending:
            batch, pending = pending[:BATCH], pending[BATCH:]
            try:
                with self._store.batch():  # a burst of files: one commit, not one per file
                    for item in batch:
                        if self._syncs.get(item[0].root) is item[0]:  # not removed by a reload
                            self._apply(*item)
            except sqlite3.OperationalError as e:  # (a full disk): nothing of the batch was kept
                self._held = batch + pending
                self._retry_at = mono + self._health.failing("buckets", e)
                return
            self._health.recovered("buckets")
            try:
                self._on_commit()
            except Exception:  # what is committed stays committed; the dispatcher's own loop retries
                log.exception("the dispatcher finds the new bucket events on its next round: waking it failed")

    @property
    def held(self) -> int:
        """Hints waiting for the store to take them again."""
        return len(self._held)

    def _next_wait(self, mono: float, watches: list[TreeWatch]) -> float:
        waits = [IDLE_WAIT_S]
        if any(w.has_pending_moves for w in watches):
            waits.append(0.01)
        if self._later:
            waits.append(min(t for t, _, _ in self._later) - mono)
        if self._held:
            waits.append(self._retry_at - mono)
        return max(0.0, min(waits))

    def _apply(self, sync: BucketSync, hint: Hint) -> None:
        self.idle.clear()
        try:
            if hint.op == "written":
                if sync.written(hint.path):  # gone already: replaced, or deleted?
                    self._later.append((self._clock.monotonic() + DELETE_SETTLE_S, sync, Hint("gone", hint.path)))
            elif hint.op == "moved":  # (an object renamed onto a temporary name is looked at again)
                self._later += [(self._clock.monotonic() + DELETE_SETTLE_S, sync, Hint("gone", p))
                                for p in sync.moved(hint.src, hint.path)]
            elif hint.op == "deleted":
                self._later.append((self._clock.monotonic() + DELETE_SETTLE_S, sync, Hint("gone", hint.path)))
            elif hint.op == "gone":  # (still gone, DELETE_SETTLE_S after it went)
                sync.deleted(hint.path)
            elif hint.op == "settled":  # (WEAK_SETTLE_S after a weak name's close, unless it was written again)
                if self._settle_at.get(hint.path, 0.0) <= self._clock.monotonic():
                    self._settle_at.pop(hint.path, None)
                    sync.settled(hint.path)
            elif hint.op == "gone_under":
                sync.gone_under(hint.path)
            elif hint.op == "folder_moved":
                sync.folder_moved(hint.src, hint.path)
            elif hint.op == "arrived":
                sync.arrived(hint.path)
            else:  # scan / rescan / startup: compare the folder with the index
                if hint.op == "rescan":
                    self._warn(f"bucket {sync.name}: the kernel dropped file events; rescanning {sync.root}")
                quiet = hint.op == "startup" and not sync.known()
                if quiet:
                    sync.mark_known()  # (forgets an index made for another folder)
                later = sync.scan(hint.path, quiet=quiet)
                due = self._clock.monotonic() + RECENT_S
                self._later += [(due, sync, Hint("written", p)) for p in later]
        except sqlite3.OperationalError:  # the store, not the file: the whole batch is tried again later
            raise
        except Exception:  # one bad file must not stop the watcher; say what happened
            log.exception("bucket %s: handling the %s event of %s failed", sync.name, hint.op, hint.path)
        finally:
            self._hold(sync)

    def _hold(self, sync: BucketSync) -> None:
        """Look again at the files `sync` held under a weak name once they have settled."""
        held = sync.take_held()
        if held:
            due = self._clock.monotonic() + WEAK_SETTLE_S
            for path in held:
                self._settle_at[path] = due
            self._later += [(due, sync, Hint("settled", p)) for p in held]

    def _recheck(self, mono: float) -> None:
        """Queue the waiting hints whose time has come (this round's end: the next round applies them)."""
        due = [item for item in self._later if item[0] <= mono]
        self._later = [item for item in self._later if item[0] > mono]
        for _, sync, hint in due:
            self._queue.put((sync, hint))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and benchmarks: wait until every reported change has been applied."""
        return self.idle.wait(timeout)
