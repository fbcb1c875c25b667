"""Parent side of the zygote: start it once per interpreter, ask it to fork execution environments.

The zygote is a long-lived child (`bootstrap.zygote_main`) that has already paid for interpreter
start-up and the runtime's imports, so a cold start costs a fork plus the handler's own imports.
When lambdad exits, even by SIGKILL, the zygote reads end-of-file on its socket and kills every
worker it forked, so no execution environment outlives the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lambdad.runtime import wire

log = logging.getLogger(__name__)

#: The folder that holds the `lambdad` package; the zygote imports the runtime from there.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: Oldest interpreter the worker-side modules support.
MIN_PYTHON = (3, 8)
_BOOT = (
    "import sys\n"
    f"if sys.version_info < {MIN_PYTHON!r}: sys.exit('lambdad runs functions on Python "
    f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer, this is ' + sys.version.split()[0])\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from lambdad.runtime.bootstrap import zygote_main\n"
    "zygote_main(int(sys.argv[2]), sys.argv[1])\n"
)
#: How long the zygote may take to start and say hello.
START_TIMEOUT_S = 30.0


class LaunchError(Exception):
    """The interpreter could not be started, or the zygote died."""


#: Go-style names, as Lambda's "Runtime exited with error: signal: killed".
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
}


@dataclass(frozen=True)
class ExitStatus:
    code: int | None = None
    signal: int | None = None


def exit_reason(status: ExitStatus | None) -> str:
    """How Lambda words a runtime's exit: "Runtime exited with error: exit status 3"."""
    if status is None or (status.code is None and status.signal is None):
        return "Runtime exited without providing a reason"
    if status.signal is not None:
        return f"Runtime exited with error: signal: {_SIGNAL_NAMES.get(status.signal, f'signal {status.signal}')}"
    if status.code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: exit status {status.code}"


@dataclass
class Spawned:
    pid: int
    ctrl: socket.socket  #: the parent's end of the worker's control socket
    out: int  #: read end of the worker's stdout/stderr pipe


class Zygote:
    """One zygote process for one interpreter. Thread-safe; restarts itself if it dies."""

    def __init__(self, python: str, env: dict[str, str], cwd: str = "/") -> None:
        self.python = python
        self.env = env
        self.cwd = cwd
        self.python_version: str | None = None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stderr: IO[bytes] | None = None

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> socket.socket:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        self._close_locked()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the zygote
        try:
            self._proc = subprocess.Popen(
                [self.python, "-c", _BOOT, PACKAGE_ROOT, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,  # a file, not a pipe: nobody reads it while the zygote runs
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # Ctrl-C at the terminal is lambdad's to handle, not the workers'
            )
        except OSError as e:
            parent.close()
            raise LaunchError(f"cannot start {self.python}: {e.strerror}") from None
        finally:
            child.close()
        try:
            if not select.select([parent], [], [], START_TIMEOUT_S)[0]:
                raise TimeoutError
            hello, _ = wire.recv(parent.fileno())
        except (EOFError, OSError, ValueError):
            parent.close()
            raise LaunchError(f"{self.python} failed to start the lambdad runtime: {self._stderr_tail()}") from None
        self.python_version = hello["python"]
        self._sock = parent
        log.debug("zygote %s started for %s (Python %s)", hello["pid"], self.python, self.python_version)
        return parent

    def _stderr_tail(self) -> str:
        proc = self._proc
        if proc is None or self._stderr is None:
            return "no output"
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {proc.returncode}"

    def spawn(self, spec: dict) -> Spawned:
        """Fork a new execution environment described by `spec` (see `bootstrap._become_environment`)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        try:
            with self._lock:
                sock = self._ensure_started()
                try:
                    socket.send_fds(sock, [wire.encode({"t": "spawn", **spec})], [theirs.fileno(), out_w])
                    reply, _ = wire.recv(sock.fileno())
                except (OSError, EOFError) as e:
                    self._close_locked()
                    raise LaunchError(f"the runtime process for {self.python} died: {e}") from None
        except BaseException:
            ours.close()
            os.close(out_r)
            raise
        finally:
            theirs.close()
            os.close(out_w)
        os.set_blocking(out_r, False)
        return Spawned(pid=reply["pid"], ctrl=ours, out=out_r)

    def reap(self, pid: int, wait_s: float = 1.0) -> ExitStatus | None:
        """Collect a worker's exit status; None if it is still running after `wait_s`."""
        with self._lock:
            if self._sock is None:
                return ExitStatus()
            try:
                wire.send(self._sock.fileno(), {"t": "reap", "pid": pid, "wait_s": wait_s})
                reply, _ = wire.recv(self._sock.fileno())
            except (OSError, EOFError):
                self._close_locked()
                return ExitStatus()
        status = reply["status"]
        return None if status is None else ExitStatus(status.get("code"), status.get("signal"))

    def kill(self, pid: int) -> None:
        """SIGKILL a worker and everything in its process group. The zygote does it: as the parent it
        knows whether the pid is still that worker's, so a recycled pid is never hit."""
        with self._lock:
            if self._sock is not None:
                try:
                    wire.send(self._sock.fileno(), {"t": "kill", "pid": pid})
                    wire.recv(self._sock.fileno())
                    return
                except (OSError, EOFError):
                    self._close_locked()
        with contextlib.suppress(OSError):  # no zygote any more: its orphans were adopted, try the group
            os.killpg(pid, signal.SIGKILL)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the zygote; it kills any worker still running before it exits."""
        with self._lock:
            self._close_locked(timeout_s)

    def _close_locked(self, timeout_s: float = 5.0) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class Launchers:
    """One zygote per interpreter path, created on first use."""

    def __init__(self, env: dict[str, str], cwd: str = "/") -> None:
        self._env = env
        self._cwd = cwd
        self._zygotes: dict[str, Zygote] = {}
        self._lock = threading.Lock()

    def get(self, python: str) -> Zygote:
        with self._lock:
            zygote = self._zygotes.get(python)
            if zygote is None:
                zygote = self._zygotes[python] = Zygote(python, self._env, self._cwd)
            return zygote

    def close(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()
