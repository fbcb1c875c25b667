"""Which invocations ran when: a file a handler writes straight into a bucket carries no trace
header, so its event is attributed to the invocation(s) running when the file was written (its
mtime), and continues their chain. That is how a handler that writes into its own bucket is seen
looping (see `tracing.MAX_CHAIN`)."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: A file counts as written during an invocation if its mtime lies within the invocation's start and
#: end widened by this much (file-system timestamps come from a coarse clock, a tick behind).
MARGIN_S = 0.05
#: Finished invocations are remembered this long (a file's event can be noticed after its writer ended).
KEEP_S = 300.0
#: At most this many invocations are remembered (the oldest are forgotten first).
MAX_SPANS = 4096


@dataclass
class Span:
    function: str
    trace: str
    start: float  #: wall-clock seconds, as file mtimes are
    end: float | None = None  #: None while it runs


class RecentInvocations:
    """Thread-safe: invocations begin and end on many threads; the bucket watcher asks."""

    def __init__(self, keep_s: float = KEEP_S, max_spans: int = MAX_SPANS) -> None:
        self._spans: OrderedDict[int, Span] = OrderedDict()
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

    def end(self, token: int, now: float) -> None:
        with self._lock:
            span = self._spans.get(token)
            if span is not None:
                span.end = now

    def during(self, at: float, margin_s: float = MARGIN_S) -> list[str]:
        """The trace headers of the invocations that were running at wall-clock time `at`."""
        with self._lock:
            return [s.trace for s in self._spans.values()
                    if s.start - margin_s <= at and (s.end is None or at <= s.end + margin_s)]

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
