"""The state folder (`.lambdad/` beside the manifest): who runs on it, and the files that outlive a run.

A running daemon holds an exclusive `flock` on `daemon.lock` for its whole life; the kernel drops it
when the process dies, even by SIGKILL, so a stale lock can never block the next start.
`daemon.json` says which process holds it, where its endpoints listen, and what is failing.

The folder is the owner's alone (0700) and so is each file in it (0600), whatever the umask: the
store and running.yaml hold the manifest's environment values.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdad.errors import DaemonAlreadyRunning
from lambdad.health import Failure
from lambdad.private import FILE_MODE, make_private_folder

LOCK_FILE = "daemon.lock"
INFO_FILE = "daemon.json"
#: The manifest text the running daemon runs (kept while a bad save waits to be fixed).
RUNNING_FILE = "running.yaml"
#: daemon.json is padded to a multiple of this: room to rewrite it in place when the disk is full.
INFO_RESERVE = 4096


@dataclass(frozen=True)
class DaemonInfo:
    """daemon.json: what a running daemon says about itself, for the commands (`status`, `invoke`).

    Written by the daemon, read by whoever finds the lock held. A field a reader does not find (a
    file written half, or by another version) takes its default, so reading never fails on shape."""

    pid: int | None = None
    version: str | None = None
    manifest: str | None = None  #: the manifest file it runs
    started: float | None = None  #: wall-clock time it started
    config: str = "current"  #: or "stale": the last save had problems, the previous configuration runs
    api: str | None = None  #: where the API listens
    listeners: dict[str, str] = field(default_factory=dict)  #: listener name -> address
    urls: dict[str, str | None] = field(default_factory=dict)  #: function -> its URL's address (None: not served)
    config_errors: list[str] = field(default_factory=list)  #: the last save's problems (while stale)
    failing: dict[str, Failure] = field(default_factory=dict)  #: component -> what fails
    sqs_mappings: dict[str, dict[str, Any]] = field(default_factory=dict)  #: `FUNCTION/QUEUE` -> last failed batch

    def to_json(self) -> dict[str, Any]:
        """The document, in the order and with the keys the daemon has always written: the lists
        of problems only when there are some."""
        doc: dict[str, Any] = {
            "pid": self.pid, "version": self.version, "manifest": self.manifest, "started": self.started,
            "config": self.config, "api": self.api, "listeners": dict(self.listeners), "urls": dict(self.urls),
        }
        doc = {k: v for k, v in doc.items() if v is not None}
        if self.config_errors:
            doc["config_errors"] = list(self.config_errors)
        if self.failing:
            doc["failing"] = {name: {"error": f.error, "since": f.since, "attempts": f.attempts}
                              for name, f in self.failing.items()}
        if self.sqs_mappings:
            doc["sqs_mappings"] = {key: dict(e) for key, e in self.sqs_mappings.items()}
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DaemonInfo:
        failing = doc.get("failing") or {}
        return cls(
            pid=doc.get("pid"), version=doc.get("version"), manifest=doc.get("manifest"), started=doc.get("started"),
            config=doc.get("config") or "current", api=doc.get("api"), listeners=dict(doc.get("listeners") or {}),
            urls=dict(doc.get("urls") or {}), config_errors=list(doc.get("config_errors") or []),
            failing={name: Failure(f.get("error", ""), f.get("since", 0.0), f.get("attempts", 0))
                     for name, f in failing.items()},
            sqs_mappings={key: dict(e) for key, e in (doc.get("sqs_mappings") or {}).items()},
        )


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._identity: tuple[int, int] | None = None  #: the folder locked (device, inode)
        self.was_used = False  #: a daemon ran on the folder before this one (its lock file was there)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def create(self) -> None:
        make_private_folder(self.path)
        make_private_folder(self.logs)

    def lock(self) -> None:
        """Claim the folder for this process. Raises DaemonAlreadyRunning if another daemon has it."""
        self.create()
        was_used = (self.path / LOCK_FILE).exists()
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = self.read_info()
            raise DaemonAlreadyRunning(str(self.path), info.pid if info else None) from None
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)
        self._lock_fd = fd
        self.was_used = was_used
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)

    def intact(self) -> str | None:
        """None while the folder locked is still the one at its path (with its lock file); else what
        happened to it. Cheap: two `stat`s."""
        if self._lock_fd is None or self._identity is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "was deleted"
        except OSError as e:
            return f"cannot be looked at ({e.strerror})"
        if (st.st_dev, st.st_ino) != self._identity:
            return "was replaced by another folder"
        if os.fstat(self._lock_fd).st_nlink == 0:
            return f"lost its {LOCK_FILE} (deleted)"
        return None

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        if self.intact() is None:  # (a folder put in its place is not ours to tidy: another daemon may run there)
            (self.path / INFO_FILE).unlink(missing_ok=True)
            (self.path / RUNNING_FILE).unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def write_info(self, info: DaemonInfo) -> None:
        """Replace daemon.json. When no new file can be written (a full disk), the old one is
        overwritten in place, within the room its padding keeps, so `status` still learns what fails."""
        data = (json.dumps(info.to_json(), indent=2) + "\n").encode()
        padded = data + b" " * (-len(data) % INFO_RESERVE)
        try:
            _replace(self.path / INFO_FILE, padded)
        except OSError:
            if not _overwrite(self.path / INFO_FILE, data):
                raise

    def write_running(self, text: str) -> None:
        _replace(self.path / RUNNING_FILE, text.encode())

    def read_running(self) -> str | None:
        """The manifest text a running daemon runs, or None when no daemon runs."""
        if self.running_daemon() is None:
            return None
        try:
            return (self.path / RUNNING_FILE).read_text(encoding="utf-8")
        except OSError:
            return None

    def read_info(self) -> DaemonInfo | None:
        """daemon.json, or None when there is none (or it cannot be read)."""
        for _ in range(3):  # (an overwrite in place may be read half-done: read again)
            try:
                doc = json.loads((self.path / INFO_FILE).read_text(encoding="utf-8"))
            except OSError:
                return None
            except ValueError:
                continue
            return DaemonInfo.from_json(doc) if isinstance(doc, dict) else None
        return None

    @contextlib.contextmanager
    def unclaimed(self) -> Iterator[bool]:
        """Hold the lock for the block, if no daemon holds it: True then (a daemon cannot start meanwhile)."""
        lock = self.path / LOCK_FILE
        if not lock.exists():
            yield True
            return
        fd = os.open(lock, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # (drops the lock)

    def running_daemon(self) -> DaemonInfo | None:
        """The running daemon's info, or None when no process holds the lock (one that has not
        written daemon.json yet: an empty record)."""
        lock = self.path / LOCK_FILE
        if not lock.exists():
            return None
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.read_info() or DaemonInfo()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    """Write a temporary file beside `path` (the owner's alone), then rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _overwrite(path: Path, data: bytes) -> bool:
    """Write `data` over `path` without growing it (no new block is needed); False if it does not fit."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if len(data) > size:
            return False
        os.pwrite(fd, data + b" " * (size - len(data)), 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
