"""Watching bucket folders: recursive inotify watches on watchdog's `InotifyFD`, and the thread that
turns what they report into `BucketSync` calls.

Why not watchdog's Observer: its move pairing scans a queue for every IN_MOVED_TO (450-580 us of
CPU per renamed file here, quadratic in a burst) and it does not tell handlers when the kernel
dropped events. Its inotify layer does both jobs well: `TreeWatch` receives raw events from it,
pairs moves by cookie in a dict, keeps its own map of watched folders, and hears about overflows
(`on_queue_overflow`), which trigger a rescan so that no file is missed.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD, Mask, WatchDescriptor

from lambdad.health import Health
from lambdad.store import Store
from lambdad.triggers.buckets.sync import RECENT_S, BucketSync

log = logging.getLogger(__name__)

#: Only what marks a finished change; no IN_OPEN / IN_MODIFY, which would quadruple the events per
#: written file and overflow the kernel queue in a burst.
MASK = Mask(
    InotifyConstants.IN_CLOSE_WRITE
    | InotifyConstants.IN_MOVED_FROM
    | InotifyConstants.IN_MOVED_TO
    | InotifyConstants.IN_CREATE
    | InotifyConstants.IN_DELETE
    | InotifyConstants.IN_DELETE_SELF
    | InotifyConstants.IN_ONLYDIR
    | InotifyConstants.IN_DONT_FOLLOW
    | InotifyConstants.IN_EXCL_UNLINK
)
#: At most this many changes are applied in one transaction.
BATCH = 256
#: Past this many hints held by a failing store, they give way to one scan of each bucket they touch
#: (memory stays bounded however long the disk is full; a scan reconciles the folder with its index).
MAX_HELD = 10_000
#: An IN_MOVED_FROM whose IN_MOVED_TO has not come after this long was a move out of the bucket.
MOVE_PAIR_S = 0.05
#: A file deleted, or renamed onto a temporary or backup name, counts as deleted if it is still
#: gone after this long: tools that replace a file remove the old one first (`install` unlinks it,
#: vim and emacs rename it to NAME~) and create the new one at once, whose close is the one Put.
DELETE_SETTLE_S = 0.2
#: A file under a weak name (`rules.WEAK_NAMES`: `.env.backup`, `tmp_invoice.pdf`) is announced if it
#: is still there this long after its close: rsync, sed -i and tempfile + os.replace rename theirs
#: onto the final name within milliseconds, and that rename is then the one Put, for the final key.
WEAK_SETTLE_S = 1.0
#: File times come from the kernel's coarse clock, up to a tick (1-10 ms) behind `time.time_ns()`:
#: a file written just after the watch began can look older than the watch. Erring this way costs
#: at worst an extra event for a file changed just before a new bucket's first start, never a lost one.
FS_CLOCK_SLACK_NS = 50_000_000


@dataclass(frozen=True)
class Hint:
    """Where to look, and why (one of the BucketSync operations)."""

    #: written | moved | deleted | gone | settled | gone_under | folder_moved | arrived | scan | rescan | startup
    op: str
    path: str
    src: str = ""


class TreeWatch:
    """Recursive watches below one bucket folder; implements watchdog's WatchCallback protocol."""

    def __init__(
        self, fd: InotifyFD, root: str, emit: Callable[[Hint], None], skip: Callable[[str], bool] = lambda p: False,
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        self.root = root
        self._fd = fd
        self._emit = emit
        self._skip = skip  #: folders not to watch (a code folder's __pycache__, .venv, ...)
        self._warn = warn
        self._out_of_watches = False  #: said once: the kernel's limit on watches is reached
        self._id = id(self)
        self._lock = threading.Lock()
        self._path_of: dict[WatchDescriptor, str] = {}
        self._pending: dict[int, tuple[str, bool, float]] = {}  #: cookie -> (path, is_dir, seen at)
        self._stopped = False

    def start(self) -> None:
        self._watch_tree(self.root)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True  # a folder being added on the inotify thread right now is removed again
            watches = [(wd, self._id) for wd in self._path_of]
            self._path_of.clear()
        self._fd.remove_callbacks(watches)

    def _watch_tree(self, top: str) -> None:
        """Watch `top` and every folder below it that is not watched yet.

        Each folder's watch is added before the folder is listed: a subfolder created in between
        is then either listed or reported by the new watch, never neither.
        """
        with self._lock:
            watched = set(self._path_of.values())
        pending = [top]
        while pending:
            folder = pending.pop()
            if folder != top and self._skip(folder):
                continue
            if folder not in watched:
                try:
                    wd = self._fd.add_callback(os.fsencode(folder), MASK, self, self._id)
                except OSError as e:  # vanished meanwhile, or not a folder any more; or no watch is left
                    if e.errno == errno.ENOSPC and not self._out_of_watches:
                        self._out_of_watches = True
                        self._warn(f"cannot watch {folder} (and maybe more below {self.root}): the kernel's limit "
                                   "on inotify watches is reached (raise fs.inotify.max_user_watches); changes there "
                                   "are seen only when lambdad starts again")
                    continue
                with self._lock:
                    stopped = self._stopped
                    if not stopped:
                        self._path_of[wd] = folder
                if stopped:
                    self._fd.remove_callbacks([(wd, self._id)])
                    return
            try:
                with os.scandir(folder) as entries:
                    pending += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue

    # -- WatchCallback ------------------------------------------------------------------------------

    def on_event(self, event: InotifyEvent) -> None:
        """Runs on the inotify thread, which serves every bucket and the reload watcher: whatever goes
        wrong with one event must not end that thread; the folder is compared with its index instead."""
        try:
            self._on_event(event)
        except Exception:
            log.exception("watching %s: rescanning, as handling an inotify event failed", self.root)
            try:
                self._emit(Hint("rescan", self.root))
            except Exception:
                log.exception("watching %s: asking for a rescan failed", self.root)

    def _on_event(self, event: InotifyEvent) -> None:
        with self._lock:
            folder = self._path_of.get(event.wd)
        if folder is None:
            return
        path = os.path.join(folder, os.fsdecode(event.name)) if event.name else folder
        is_dir = bool(event.mask & InotifyConstants.IN_ISDIR)
        mask = event.mask
        if mask & InotifyConstants.IN_CLOSE_WRITE:
            self._emit(Hint("written", path))
        elif mask & InotifyConstants.IN_MOVED_FROM:
            with self._lock:
                self._pending[event.cookie] = (path, is_dir, time.monotonic())
        elif mask & InotifyConstants.IN_MOVED_TO:
            with self._lock:
                src = self._pending.pop(event.cookie, None)
            if src is None:  # moved in from outside the bucket: arrives whole
                if is_dir:
                    self._watch_tree(path)
                    self._emit(Hint("arrived", path))
                else:
                    self._emit(Hint("written", path))
            elif is_dir:
                self._rename_tree(src[0], path)
                self._emit(Hint("folder_moved", path, src[0]))
            else:
                self._emit(Hint("moved", path, src[0]))
        elif mask & InotifyConstants.IN_CREATE and is_dir:
            if self._skip(path):
                return
            # Files may land in it before its watch exists: look once the watch is in place.
            self._watch_tree(path)
            self._emit(Hint("scan", path))
        elif mask & InotifyConstants.IN_DELETE:
            self._emit(Hint("gone_under" if is_dir else "deleted", path))
        elif mask & (InotifyConstants.IN_DELETE_SELF | InotifyConstants.IN_IGNORED):
            with self._lock:
                self._path_of.pop(event.wd, None)

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        with self._lock:
            self._path_of.pop(wd, None)

    def on_queue_overflow(self) -> None:
        """The kernel dropped events: watch any folder that appeared unseen, then compare everything."""
        try:
            self._watch_tree(self.root)
            self._emit(Hint("rescan", self.root))
        except Exception:  # (on the inotify thread, as `on_event`)
            log.exception("watching %s: recovering from an inotify overflow failed", self.root)

    def expire_moves(self, now: float) -> None:
        """Moves out of the bucket: an IN_MOVED_FROM left without its IN_MOVED_TO."""
        with self._lock:
            expired = [(c, p) for c, p in self._pending.items() if now - p[2] >= MOVE_PAIR_S]
            for cookie, _ in expired:
                del self._pending[cookie]
        for _, (path, is_dir, _) in expired:
            if is_dir:
                self._forget_tree(path)
            self._emit(Hint("gone_under" if is_dir else "deleted", path))

    @property
    def has_pending_moves(self) -> bool:
        return bool(self._pending)

    def _rename_tree(self, src: str, dst: str) -> None:
        """inotify keeps the watches of a moved folder: only their paths change."""
        with self._lock:
            for wd, folder in self._path_of.items():
                if folder == src or folder.startswith(src + os.sep):
                    self._path_of[wd] = dst + folder[len(src):]

    def _forget_tree(self, src: str) -> None:
        with self._lock:
            gone = [wd for wd, f in self._path_of.items() if f == src or f.startswith(src + os.sep)]
        self._fd.remove_callbacks([(wd, self._id) for wd in gone])
        with self._lock:
            for wd in gone:
                self._path_of.pop(wd, None)


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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_commit = on_commit  #: called after each batch of changes is committed
        self._syncs = {s.root: s for s in syncs}
        self._store = store
        self._warn = warn
        self._health = health or Health()
        self._monotonic = monotonic
        self._queue: queue.SimpleQueue[tuple[BucketSync, Hint] | None] = queue.SimpleQueue()
        self._fd: InotifyFD | None = None
        self._watches: dict[str, TreeWatch] = {}
        self._thread: threading.Thread | None = None
        self._later: list[tuple[float, BucketSync, Hint]] = []  #: hints due at a time (monotonic)
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
        self._thread = threading.Thread(target=self._run, name="buckets", daemon=True)
        self._thread.start()

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
        watch = TreeWatch(self._fd, sync.root, lambda hint, s=sync: self._queue.put((s, hint)), warn=self._warn)
        sync.watching_since_ns = time.time_ns() - FS_CLOCK_SLACK_NS  # on the file-system clock's side
        watch.start()
        self._watches[sync.root] = watch
        if reconcile:
            self._queue.put((sync, Hint("startup", sync.root)))

    def stop(self) -> None:
        for watch in list(self._watches.values()):
            watch.stop()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(10)
        if self._fd is not None:
            self._fd.stop()
            self._fd = None

    def _run(self) -> None:
        while True:
            timeout = self._next_timeout()
            try:
                batch = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                batch = []
            while batch and batch[-1] is not None and len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            stop = None in batch
            try:
                self.work([item for item in batch if item is not None])
            except Exception as e:  # the thread must survive anything; hints already held stay held
                self._retry_at = self._monotonic() + self._health.failing("buckets", e)
            if stop:
                return
            now = time.monotonic()  # (the watches stamp moves with it)
            watches = list(self._watches.values())  # a reload may change the dict meanwhile
            for watch in watches:
                if watch.has_pending_moves:
                    watch.expire_moves(now)
            self._recheck(self._monotonic())
            if (self._queue.empty() and not self._later and not self._held
                    and not any(w.has_pending_moves for w in watches)):
                self.idle.set()
            else:
                self.idle.clear()

    def work(self, items: list[tuple[BucketSync, Hint]]) -> None:
        """Apply `items` after the hints held from a failed commit, in order, a batch per commit;
        while the retry is not due, only add them to what is held."""
        now = self._monotonic()
        if self._held and now < self._retry_at:
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
                self._retry_at = now + self._health.failing("buckets", e)
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

    def _next_timeout(self) -> float | None:
        waits = []
        if any(w.has_pending_moves for w in list(self._watches.values())):
            waits.append(0.01)
        if self._later:
            waits.append(max(0.0, min(t for t, _, _ in self._later) - self._monotonic()))
        if self._held:
            waits.append(max(0.0, self._retry_at - self._monotonic()))
        return min(waits) if waits else None

    def _apply(self, sync: BucketSync, hint: Hint) -> None:
        self.idle.clear()
        try:
            if hint.op == "written":
                if sync.written(hint.path):  # gone already: replaced, or deleted?
                    self._later.append((self._monotonic() + DELETE_SETTLE_S, sync, Hint("gone", hint.path)))
            elif hint.op == "moved":  # (an object renamed onto a temporary name is looked at again)
                self._later += [(self._monotonic() + DELETE_SETTLE_S, sync, Hint("gone", p))
                                for p in sync.moved(hint.src, hint.path)]
            elif hint.op == "deleted":
                self._later.append((self._monotonic() + DELETE_SETTLE_S, sync, Hint("gone", hint.path)))
            elif hint.op == "gone":  # (still gone, DELETE_SETTLE_S after it went)
                sync.deleted(hint.path)
            elif hint.op == "settled":  # (WEAK_SETTLE_S after a weak name's close, unless it was written again)
                if self._settle_at.get(hint.path, 0.0) <= self._monotonic():
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
                due = self._monotonic() + RECENT_S
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
            due = self._monotonic() + WEAK_SETTLE_S
            for path in held:
                self._settle_at[path] = due
            self._later += [(due, sync, Hint("settled", p)) for p in held]

    def _recheck(self, now: float) -> None:
        due = [item for item in self._later if item[0] <= now]
        self._later = [item for item in self._later if item[0] > now]
        for _, sync, hint in due:
            self._queue.put((sync, hint))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and benchmarks: wait until every reported change has been applied."""
        return self.idle.wait(timeout)
