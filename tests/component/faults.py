"""Faults on demand: a store on a disk that fills up (every commit fails as SQLite's does, until the
test frees it), and an inline executor that loses exceptions the way a thread pool does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager

from lambdad.store import Store


class FillableStore(Store):
    """A real store (reads work as ever) whose commits raise "database or disk is full" while `full`."""

    full = False
    failed_commits = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with super().transaction() as tx:
            yield tx
            if self.full:  # rolled back: nothing of it is kept, as when SQLite finds no room
                self.failed_commits += 1
                raise sqlite3.OperationalError("database or disk is full")


class PoolLikeExecutor(Executor):
    """Runs each job at once on the caller's thread, and, as a thread pool does, keeps what it raised
    in its future (nobody sees it unless the future is read)."""

    def __init__(self) -> None:
        self.shut = False

    def submit(self, fn, /, *args, **kwargs):
        if self.shut:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:
            future.set_exception(e)
        return future

    def shutdown(self, wait=True, **kwargs):
        self.shut = True
