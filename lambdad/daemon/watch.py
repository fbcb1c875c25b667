"""Noticing edits: the manifest file and every function's code folder.

Editors save in several steps (write a temporary file, rename it over the original, remove a
backup), so a change counts once its file or folder has been quiet for `DEBOUNCE_S`. This module
only records what changed and wakes the daemon's loop; the loop reloads, so one thread applies
every change, whether it came from a save, a handler edit or SIGHUP.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.observers.inotify_c import InotifyEvent, InotifyFD, WatchDescriptor

from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.triggers.buckets.inotify import MASK, Hint, TreeWatch
from lambdad.triggers.buckets.rules import DEFAULT_IGNORE, WEAK_IGNORE, IgnoreRules

#: A save counts once nothing more happened to the file (or code folder) for this long.
DEBOUNCE_S = 0.1
#: Folders inside a code folder that never hold the function's own code.
SKIP_FOLDERS = frozenset({
    "__pycache__", ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", "node_modules", ".idea", ".vscode",
})
#: Files whose change is not a code change: editor litter, tools' temporaries (also names that only
#: look like one, which buckets hold back instead: a temporary's rename onto a code file is the change),
#: and compiled bytecode.
IGNORED_FILES = IgnoreRules((*DEFAULT_IGNORE, *WEAK_IGNORE, "*.pyc", "*.pyo"))
#: While a rename out of a code folder is unpaired, look again this soon.
MOVE_CHECK_S = 0.05


class _ManifestFolder:
    """The folder holding the manifest (editors replace the file, so the folder is what is watched)."""

    def __init__(self, name: str, changed: Callable[[], None]) -> None:
        self._name = os.fsencode(name)
        self._changed = changed

    def on_event(self, event: InotifyEvent) -> None:
        if event.name == self._name:
            self._changed()

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        pass

    def on_queue_overflow(self) -> None:
        self._changed()


class ReloadWatch:
    """Watches the manifest and the code folders; `due(now)` says what changed and settled."""

    def __init__(self, manifest_file: Path, wake: Callable[[], None] = lambda: None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        """A change is stamped with `clock`'s monotonic time; `due(now)` compares it with that time."""
        self.manifest_file = Path(os.path.realpath(manifest_file))
        self._wake = wake
        self._clock = clock
        self._monotonic = clock.monotonic
        self._lock = threading.Lock()
        self._manifest_at: float | None = None  #: last change to the manifest not yet reloaded
        self._code_at: dict[str, float] = {}  #: code folder -> last change not yet acted on
        self._changed: dict[str, set[str]] = {}  #: code folder -> the files that changed
        self._code: dict[str, TreeWatch] = {}
        self._not_code: tuple[str, ...] = ()
        self._fd: InotifyFD | None = None
        self._manifest_wd: WatchDescriptor | None = None

    def start(self, code_folders: Iterable[str | Path], not_code: Iterable[str | Path] = ()) -> None:
        """Watch the manifest, and `code_folders` except the folders in `not_code` (the state
        folder, buckets) that may sit inside one of them."""
        self._fd = InotifyFD()
        self._fd.start()
        callback = _ManifestFolder(self.manifest_file.name, self._manifest_changed)
        self._manifest_wd = self._fd.add_callback(os.fsencode(self.manifest_file.parent), MASK, callback, id(self))
        self.watch_code(code_folders, not_code)

    def watch_code(self, folders: Iterable[str | Path], not_code: Iterable[str | Path] = ()) -> None:
        """Watch exactly these code folders from now on (after a reload changed the set)."""
        assert self._fd is not None
        self._not_code = tuple(os.path.realpath(p) for p in not_code)
        wanted = {os.path.realpath(f) for f in folders}
        for folder in set(self._code) - wanted:
            self._code.pop(folder).stop()
            with self._lock:
                self._code_at.pop(folder, None)
                self._changed.pop(folder, None)
        for folder in sorted(wanted - set(self._code)):
            watch = TreeWatch(self._fd, folder, lambda hint, f=folder: self._code_changed(f, hint), self._skip,
                              clock=self._clock)
            watch.start()
            self._code[folder] = watch

    def stop(self) -> None:
        for watch in self._code.values():
            watch.stop()
        self._code.clear()
        if self._fd is not None:
            self._fd.stop()
            self._fd = None

    # -- what changed ---------------------------------------------------------------------------------

    def due(self, now: float) -> tuple[bool, dict[str, set[str]]]:
        """(the manifest changed, {code folder: its changed files}), each settled for DEBOUNCE_S;
        forgotten once returned."""
        for watch in self._code.values():
            if watch.has_pending_moves:
                watch.expire_moves(now)
        with self._lock:
            manifest = self._manifest_at is not None and now - self._manifest_at >= DEBOUNCE_S
            if manifest:
                self._manifest_at = None
            folders = {f: self._changed.pop(f, set()) for f, at in self._code_at.items() if now - at >= DEBOUNCE_S}
            for folder in folders:
                del self._code_at[folder]
        return manifest, folders

    def next_check(self, now: float) -> float | None:
        """Seconds until `due` may have something to say (None: not until the next change)."""
        with self._lock:
            times = [t for t in [self._manifest_at, *self._code_at.values()] if t is not None]
        waits = [max(0.0, t + DEBOUNCE_S - now) for t in times]
        if any(w.has_pending_moves for w in self._code.values()):
            waits.append(MOVE_CHECK_S)
        return min(waits) if waits else None

    def _manifest_changed(self) -> None:
        with self._lock:
            self._manifest_at = self._monotonic()
        self._wake()

    def _code_changed(self, folder: str, hint: Hint) -> None:
        if not (self._is_code(hint.path) or (hint.src and self._is_code(hint.src))):
            return
        with self._lock:
            self._code_at[folder] = self._monotonic()
            self._changed.setdefault(folder, set()).update(p for p in (hint.path, hint.src) if p)
        self._wake()

    def _skip(self, folder: str) -> bool:
        return os.path.basename(folder) in SKIP_FOLDERS or self._outside_code(folder)

    def _outside_code(self, path: str) -> bool:
        return any(path == p or path.startswith(p + os.sep) for p in self._not_code)

    def _is_code(self, path: str) -> bool:
        """Whether a change at `path` can change what a function runs."""
        if path == str(self.manifest_file) or self._outside_code(path):
            return False
        parts = path.split(os.sep)
        if any(part in SKIP_FOLDERS for part in parts):
            return False
        return not IGNORED_FILES(parts[-1])
