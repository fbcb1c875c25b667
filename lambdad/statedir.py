"""The state folder (`.lambdad/` beside the manifest): who runs on it, and the files that outlive a run.

A running daemon holds an exclusive `flock` on `daemon.lock` for its whole life; the kernel drops it
when the process dies, even by SIGKILL, so a stale lock can never block the next start.
`daemon.json` says which process holds it and where its endpoints listen.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from lambdad.errors import DaemonAlreadyRunning

LOCK_FILE = "daemon.lock"
INFO_FILE = "daemon.json"
#: The manifest text the running daemon runs (kept while a bad save waits to be fixed).
RUNNING_FILE = "running.yaml"


class StateDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def create(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)

    def lock(self) -> None:
        """Claim the folder for this process. Raises DaemonAlreadyRunning if another daemon has it."""
        self.create()
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = self.read_info() or {}
            raise DaemonAlreadyRunning(str(self.path), info.get("pid")) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        (self.path / INFO_FILE).unlink(missing_ok=True)
        (self.path / RUNNING_FILE).unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def write_info(self, info: dict[str, Any]) -> None:
        tmp = self.path / (INFO_FILE + ".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / INFO_FILE)

    def write_running(self, text: str) -> None:
        tmp = self.path / (RUNNING_FILE + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path / RUNNING_FILE)

    def read_running(self) -> str | None:
        """The manifest text a running daemon runs, or None when no daemon runs."""
        if self.running_daemon() is None:
            return None
        try:
            return (self.path / RUNNING_FILE).read_text(encoding="utf-8")
        except OSError:
            return None

    def read_info(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def running_daemon(self) -> dict[str, Any] | None:
        """The running daemon's info, or None when no process holds the lock."""
        lock = self.path / LOCK_FILE
        if not lock.exists():
            return None
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.read_info() or {}
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
