"""Recursive inotify watches below a folder, on watchdog's `InotifyFD`: what happened, as `Hint`s.

Why not watchdog's Observer: its move pairing scans a queue for every IN_MOVED_TO (450-580 us of
CPU per renamed file here, quadratic in a burst) and it does not tell handlers when the kernel
dropped events. Its inotify layer does both jobs well: `TreeWatch` receives raw events from it,
pairs moves by cookie in a dict, keeps its own map of watched folders, and hears about overflows
(`on_queue_overflow`), which ask for a rescan so that no file is missed. The bucket watcher and the
reload watcher both watch through it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD, Mask, WatchDescriptor

from lambdad.clock import SYSTEM_CLOCK, Clock

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
#: An IN_MOVED_FROM whose IN_MOVED_TO has not come after this long was a move out of the bucket.
MOVE_PAIR_S = 0.05

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
        warn: Callable[[str], None] = log.warning, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """A rename out of the tree is told apart on `clock`'s monotonic time (`expire_moves(now_mono)`)."""
        self.root = root
        self._fd = fd
        self._emit = emit
        self._skip = skip  #: folders not to watch (a code folder's __pycache__, .venv, ...)
        self._warn = warn
        self._clock = clock
        self._out_of_watches = False  #: said once: the kernel's limit on watches is reached
        self._id = id(self)
        self._lock = threading.Lock()
        self._path_of: dict[WatchDescriptor, str] = {}
        self._pending: dict[int, tuple[str, bool, float]] = {}  #: cookie -> (path, is_dir, monotonic time seen)
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
                self._pending[event.cookie] = (path, is_dir, self._clock.monotonic())
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

    def expire_moves(self, now_mono: float) -> None:
        """Moves out of the bucket: an IN_MOVED_FROM left without its IN_MOVED_TO for MOVE_PAIR_S."""
        with self._lock:
            expired = [(c, p) for c, p in self._pending.items() if now_mono - p[2] >= MOVE_PAIR_S]
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
