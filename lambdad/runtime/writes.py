"""Which files an invocation writes, reported to lambdad as it writes them (in the handler's process).

An audit hook sees every `open` for writing, rename, link and symlink the handler makes; each path
is sent once, at once, as a `wrote` frame on the control socket, so that a file it wrote into a
bucket continues its chain of events (recursive loop detection) even if the handler then runs for
long, times out or dies. Standard library only, Python 3.8+, like the rest of the worker side.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from lambdad.runtime import wire

#: The paths the running invocation opened for writing, or renamed, linked or copied to (None
#: between invocations): each is reported once, as it happens, so that a file it wrote into a bucket
#: continues its chain of events even if the handler then runs for long, times out or dies.
_written = None
#: At most this many paths are reported per invocation (more are dropped: a report never waits long).
MAX_WRITTEN = 1000
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: The audit events that write a path; every other event (there are many: `copy.deepcopy`,
#: `sys._getframe`, ...) leaves the hook after one set lookup.
_WRITE_EVENTS = frozenset(("open", "os.rename", "os.replace", "os.link", "os.symlink"))
_reports = None  #: the control socket, for the reports (its own descriptor: sends that never wait)
_pid = 0  #: the environment's own process: a process it forks reports nothing
send_lock = threading.Lock()  #: a report and the result are whole frames, whichever thread sends them
_hooked = threading.local()  #: `busy` while this thread is inside the hook (what it calls may audit too)


def install(ctrl: int) -> None:
    """In the environment's own process, once its handler is loaded."""
    global _reports, _pid
    _reports, _pid = socket.fromfd(ctrl, socket.AF_UNIX, socket.SOCK_STREAM), os.getpid()
    sys.addaudithook(_audit)


def begin() -> None:
    """An invocation starts: what it writes is reported from now on."""
    global _written
    _written = set()


def end() -> None:
    global _written
    _written = None


def _audit(event, args) -> None:
    """The audit events that write a path, in the handler's own process: which files an invocation
    writes. Never raises (an audit hook that raises aborts the operation)."""
    if event not in _WRITE_EVENTS or _written is None or getattr(_hooked, "busy", False):
        return
    _hooked.busy = True
    try:
        path = _written_path(event, args)
        if path is not None and path not in _written and len(_written) < MAX_WRITTEN and os.getpid() == _pid:
            _written.add(path)
            if not _report(path):
                _written.discard(path)  # (a later write of it tries again)
    except Exception:
        pass
    finally:
        _hooked.busy = False


def _report(path: str) -> bool:
    """Send one `wrote` frame without waiting; False if lambdad has not read the earlier ones yet (the
    report is dropped). A frame this small goes into the socket whole or not at all; should the
    kernel take only part, the rest is sent, waiting, so that the stream stays whole."""
    frame = wire.encode({"t": "wrote", "p": path, "at": time.time()})  # (before the file is opened)
    with send_lock:
        try:
            sent = _reports.send(frame, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        if sent < len(frame):
            wire.write_all(_reports.fileno(), frame[sent:])
    return True


def _written_path(event: str, args: tuple):
    """The absolute path an audit event writes, or None (a read, a path given as a descriptor).

    `open` says nothing of a `dir_fd` (`os.open(name, flags, dir_fd=fd)`): such a relative name is
    taken as relative to the working folder. The others name theirs (`os.rename(src, dst,
    src_dir_fd, dst_dir_fd)`, `os.symlink(src, dst, dir_fd)`).
    """
    if event == "open":
        path, mode, flags = args[0], args[1], args[2]
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        dir_fd = None
    else:
        path, dir_fd, writing = args[1], args[-1], True
    if not writing or isinstance(path, int):
        return None
    path = os.fsdecode(path)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
        path = os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), path)
    return os.path.abspath(path)
