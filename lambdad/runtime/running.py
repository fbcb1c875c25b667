"""Which invocation wrote a bucket's file: a file a handler writes straight into a bucket carries no
trace header, so its event continues the chain of the invocation that wrote it, and a handler that
writes into its own bucket is seen looping (see `tracing.MAX_CHAIN`).

The rule, exactly: the event of a created object continues the chain of an invocation when (1) the
file's mtime lies within the invocation's run (start to end, widened by `MARGIN_S`) and (2) that
invocation's own process opened the file's path for writing, or renamed a file to it (the worker
reports those paths with its result, from Python's `open` and `os.rename`/`os.replace` audit
events). A file written by anyone else (the user, another program, a process the handler started)
starts a chain of its own. The writer is known when its invocation ends; an event whose file may
still be being written by a running invocation waits for it, at most `MAX_WAIT_S` after the event
was accepted (then it starts a chain of its own).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

#: A file counts as written during an invocation if its mtime lies within the invocation's start and
#: end widened by this much (file-system timestamps come from a coarse clock, a tick behind).
MARGIN_S = 0.05
#: Finished invocations are remembered this long (a file's event can be claimed after its writer ended).
KEEP_S = 300.0
#: At most this many invocations, and files waiting for their writer, are remembered (oldest forgotten).
MAX_SPANS = 4096
#: An event waits at most this long for a running invocation that may have written its file.
MAX_WAIT_S = 2.0


@dataclass
class Span:
    function: str
    trace: str
    start: float  #: wall-clock seconds, as file mtimes are
    end: float | None = None  #: None while it runs
    written: frozenset[str] = field(default_factory=frozenset)  #: real paths its process wrote

    def covers(self, at: float, margin_s: float) -> bool:
        return self.start - margin_s <= at and (self.end is None or at <= self.end + margin_s)


@dataclass(frozen=True)
class Writers:
    """What is known about who wrote an event's file."""

    traces: tuple[str, ...] = ()  #: the trace headers of the invocations that wrote it
    waiting: bool = False  #: an invocation that may have written it still runs: ask again shortly


class RecentInvocations:
    """Thread-safe: invocations begin and end on many threads; the bucket watcher and the
    dispatcher ask."""

    def __init__(self, keep_s: float = KEEP_S, max_spans: int = MAX_SPANS) -> None:
        self._spans: OrderedDict[int, Span] = OrderedDict()
        self._files: OrderedDict[str, tuple[str, float]] = OrderedDict()  #: request id -> (path, mtime)
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._keep_s = keep_s
        self._max = max_spans

    def begin(self, function: str, trace: str, now: float) -> int:
        with self._lock:
            token = next(self._ids)
            self._spans[token] = Span(function, trace, now)
            self._forget(now)
            return token

    def end(self, token: int, now: float, written: tuple[str, ...] = ()) -> None:
        real = frozenset(os.path.realpath(p) for p in written)  # (outside the lock: it asks the file system)
        with self._lock:
            span = self._spans.get(token)
            if span is not None:
                span.end, span.written = now, real

    def file_event(self, request_id: str, path: str, mtime: float) -> None:
        """An event for the created file `path` was accepted: remember it if an invocation ran then."""
        real = os.path.realpath(path)
        with self._lock:
            if any(s.covers(mtime, MARGIN_S) for s in self._spans.values()):
                self._files[request_id] = (real, mtime)
                while len(self._files) > self._max:
                    self._files.popitem(last=False)

    def writers(self, request_id: str, accepted_at: float, now: float) -> Writers:
        """Who wrote the file of the event `request_id` (see the module's rule)."""
        with self._lock:
            noted = self._files.get(request_id)
            if noted is None:
                return Writers()
            path, mtime = noted
            candidates = [s for s in self._spans.values() if s.covers(mtime, MARGIN_S)]
            traces = tuple(s.trace for s in candidates if s.end is not None and path in s.written)
            if not traces and any(s.end is None for s in candidates) and now < accepted_at + MAX_WAIT_S:
                return Writers(waiting=True)
            del self._files[request_id]
            return Writers(traces)

    def _forget(self, now: float) -> None:
        """The oldest first, while they ended long enough ago (one still running stops the sweep
        until it ends: the bound on their number still holds)."""
        while len(self._spans) > self._max:
            self._spans.popitem(last=False)
        while self._spans:
            first = next(iter(self._spans.values()))
            if first.end is None or first.end >= now - self._keep_s:
                break
            self._spans.popitem(last=False)
