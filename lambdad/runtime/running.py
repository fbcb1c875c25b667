"""Which invocation wrote a bucket's file: a file a handler writes straight into a bucket carries no
trace header, so its event continues the chain of the invocation that wrote it, and a handler that
writes into its own bucket is seen looping (see `tracing.MAX_CHAIN`).

The rule, exactly: the event of a created object continues the chain of an invocation when (1) that
invocation's own process opened the file's path for writing, or renamed, linked or copied a file to
it, and (2) the bucket saw the change after that report and at most `LAG_S` after the invocation
ended. The worker reports each such path the moment the handler opens it (Python's `open`,
`os.rename`/`os.replace`, `os.link`/`os.symlink` audit events), over its control socket, so what a
handler wrote counts even when it goes on running for long, times out or is killed. The time that
matters is when the change was seen, not the file's mtime: a rename or `shutil.copy2` keeps the
source's. A file written by anyone else (the user, another program, a process the handler started)
starts a chain of its own.

A path is reported before the file is opened, so its report is on its way to lambdad before the
watcher can see the file closed; an event nobody reported yet waits at most `RACE_S` after it was
seen (once, not polling), and only while an invocation that started before it still runs.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

#: Clock margin between an invocation's start, a path's report and the bucket seeing the change.
MARGIN_S = 0.05
#: The bucket may see a change this long after its writer ended (a weak name is held about 1 s, a
#: watcher behind on a burst of events catches up).
LAG_S = 5.0
#: Finished invocations are remembered this long (a file's event can be claimed after its writer ended).
KEEP_S = 300.0
#: At most this many invocations, and events waiting for their writer, are remembered (oldest forgotten).
MAX_SPANS = 4096
#: At most this many reported paths are remembered over all invocations (oldest forgotten).
MAX_PATHS = 65536
#: An event nobody reported its path for waits this long after it was seen, while an invocation runs:
#: the report may still be in the worker's socket.
RACE_S = 0.05


@dataclass
class Span:
    function: str
    trace: str
    start: float  #: wall-clock seconds, as the bucket's clock
    end: float | None = None  #: None while it runs
    written: dict[str, float] = field(default_factory=dict)  #: real path -> when it was reported

    def wrote(self, path: str, at: float) -> bool:
        """This invocation wrote `path` before the bucket saw it change `at` (see the module's rule)."""
        reported = self.written.get(path)
        return (reported is not None and reported - MARGIN_S <= at
                and (self.end is None or at <= self.end + LAG_S))


@dataclass(frozen=True)
class Writers:
    """What is known about who wrote an event's file."""

    traces: tuple[str, ...] = ()  #: the trace headers of the invocations that wrote it
    waiting: bool = False  #: its writer's report may still be on its way: ask again at `until`
    until: float = 0.0


class RecentInvocations:
    """Thread-safe: invocations begin, report and end on many threads; the bucket watcher and the
    dispatcher ask."""

    def __init__(self, keep_s: float = KEEP_S, max_spans: int = MAX_SPANS, max_paths: int = MAX_PATHS) -> None:
        self._spans: OrderedDict[int, Span] = OrderedDict()
        self._paths: OrderedDict[str, set[int]] = OrderedDict()  #: real path -> spans that reported it
        self._files: OrderedDict[str, tuple[str, float]] = OrderedDict()  #: request id -> (path, seen at)
        self._running: dict[int, float] = {}  #: token -> start, of the invocations still running
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._keep_s = keep_s
        self._max = max_spans
        self._max_paths = max_paths

    def begin(self, function: str, trace: str, now: float) -> int:
        with self._lock:
            token = next(self._ids)
            self._spans[token] = Span(function, trace, now)
            self._running[token] = now
            self._forget(now)
            return token

    def wrote(self, token: int, path: str, now: float) -> None:
        """The invocation `token` opened `path` for writing (or renamed, linked or copied to it) at `now`."""
        real = os.path.realpath(path)  # (outside the lock: it asks the file system)
        with self._lock:
            span = self._spans.get(token)
            if span is None or real in span.written:
                return
            span.written[real] = now
            self._paths.setdefault(real, set()).add(token)
            self._paths.move_to_end(real)
            while len(self._paths) > self._max_paths:
                self._paths.popitem(last=False)

    def end(self, token: int, now: float) -> None:
        with self._lock:
            self._running.pop(token, None)
            span = self._spans.get(token)
            if span is not None:
                span.end = now

    def file_event(self, request_id: str, path: str, seen_at: float) -> None:
        """An event for the created file `path`, seen changed at `seen_at`, was accepted: remember it
        if an invocation reported the path, or may still report it."""
        real = os.path.realpath(path)
        with self._lock:
            if real in self._paths or self._running_since(seen_at):
                self._files[request_id] = (real, seen_at)
                while len(self._files) > self._max:
                    self._files.popitem(last=False)

    def writers(self, request_id: str, now: float) -> Writers:
        """Who wrote the file of the event `request_id` (see the module's rule); answered once."""
        with self._lock:
            noted = self._files.get(request_id)
            if noted is None:
                return Writers()
            path, seen_at = noted
            spans = (self._spans.get(t) for t in self._paths.get(path, ()))
            traces = tuple(s.trace for s in spans if s is not None and s.wrote(path, seen_at))
            if not traces and now < seen_at + RACE_S and self._running_since(seen_at):
                return Writers(waiting=True, until=seen_at + RACE_S)
            del self._files[request_id]
            return Writers(tuple(sorted(traces)))

    def _running_since(self, at: float) -> bool:
        """An invocation that started before `at` still runs (as many to look at as run at once)."""
        return any(start - MARGIN_S <= at for start in self._running.values())

    def _forget(self, now: float) -> None:
        """The oldest first, while they ended long enough ago (one still running stops the sweep
        until it ends: the bound on their number still holds)."""
        while len(self._spans) > self._max:
            self._drop(*self._spans.popitem(last=False))
        while self._spans:
            first = next(iter(self._spans.values()))
            if first.end is None or first.end >= now - self._keep_s:
                break
            self._drop(*self._spans.popitem(last=False))

    def _drop(self, token: int, span: Span) -> None:
        self._running.pop(token, None)
        for path in span.written:
            tokens = self._paths.get(path)
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._paths[path]
