"""The SQLite file in the state folder: the single source of truth for what must survive `kill -9`.

One connection, guarded by a lock, serves every thread of the daemon; other processes (the CLI
while a daemon runs) open their own and SQLite's WAL locking keeps them consistent. Operations in
the sibling modules take a `sqlite3.Connection` so that a caller can compose several of them into
one transaction (`with store.transaction() as tx:`), which is one commit.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lambdad.errors import StoreError, StoreUnavailable, unavailable
from lambdad.private import FILE_MODE, make_private_folder

#: Bumped when the schema changes; an older file is migrated forward, a newer one refused.
SCHEMA_VERSION = 3
#: How long a connection waits for another process's write lock before failing.
BUSY_TIMEOUT_MS = 10_000
#: The store's file in the state folder.
STORE_FILE = "store.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT NOT NULL,
    function      TEXT NOT NULL,
    payload       BLOB NOT NULL,
    source        TEXT NOT NULL,
    hops          INTEGER NOT NULL DEFAULT 0,
    enqueued_at   REAL NOT NULL,
    due_at        REAL NOT NULL,
    leased_until  REAL,
    invocations   INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    throttles     INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_response BLOB,
    trace         TEXT
);
CREATE INDEX IF NOT EXISTS events_waiting ON events (due_at) WHERE leased_until IS NULL;

CREATE TABLE IF NOT EXISTS messages (
    id               INTEGER PRIMARY KEY,
    message_id       TEXT NOT NULL,
    queue            TEXT NOT NULL,
    body             BLOB NOT NULL,
    attributes       TEXT NOT NULL DEFAULT '{}',
    sent_at          REAL NOT NULL,
    visible_at       REAL NOT NULL,
    receive_count    INTEGER NOT NULL DEFAULT 0,
    first_receive_at REAL,
    group_id         TEXT,
    dedup_id         TEXT,
    sequence         INTEGER,
    receipt          TEXT,
    system_attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);

CREATE TABLE IF NOT EXISTS dedup (
    queue      TEXT NOT NULL,
    dedup_id   TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence   INTEGER,
    expires_at REAL NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stream_records (
    stream        TEXT NOT NULL,
    shard         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    key_hash      INTEGER NOT NULL,
    data          BLOB NOT NULL,
    arrived_at    REAL NOT NULL,
    PRIMARY KEY (stream, shard, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stream_sequences (
    stream TEXT NOT NULL,
    shard  INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (stream, shard)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stream_positions (
    mapping TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    lane    INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (mapping, shard, lane)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS queue_sequences (
    queue TEXT PRIMARY KEY,
    last  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT NOT NULL,
    function      TEXT NOT NULL,
    payload       BLOB NOT NULL,
    condition     TEXT NOT NULL,
    invocations   INTEGER NOT NULL,
    error_type    TEXT,
    error_message TEXT,
    response      BLOB,
    target        TEXT NOT NULL DEFAULT '',
    message_id    TEXT,
    enqueued_at   REAL NOT NULL,
    failed_at     REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY,
    folder     TEXT NOT NULL,
    name       TEXT NOT NULL,
    content    BLOB NOT NULL,
    function   TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     REAL NOT NULL,
    last_error TEXT
);

CREATE TABLE IF NOT EXISTS objects (
    bucket     TEXT NOT NULL,
    key        TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    etag       TEXT NOT NULL,
    version_id TEXT,
    sequencer  TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS buckets (
    name       TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    indexed_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS schedules (
    name       TEXT PRIMARY KEY,
    function   TEXT NOT NULL,
    expression TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_fire  REAL
);

CREATE TABLE IF NOT EXISTS stats (
    function  TEXT PRIMARY KEY,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0
);
"""


#: Indexes on columns an older store gains by migration: created after it. Two are dropped, each an
#: extra b-tree update on every send: messages_visible_order (an index's entries end with the rowid,
#: `id`, so messages_visible already gives that order) and messages_by_id (messages are found by
#: their row id; only purges look for message ids, in one pass).
INDEXES = """
DROP INDEX IF EXISTS messages_visible_order;
DROP INDEX IF EXISTS messages_by_id;
CREATE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt) WHERE receipt IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (queue, group_id, id) WHERE group_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);
CREATE INDEX IF NOT EXISTS stream_records_arrival ON stream_records (stream, arrived_at);
"""


class Durability(enum.StrEnum):
    """`normal` survives a killed process; `full` also survives a power cut, at one fsync per commit."""

    normal = "normal"
    full = "full"


T = TypeVar("T")


class _Pending:
    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Callable[[sqlite3.Connection], Any]) -> None:
        self.op = op
        self.result: Any = None
        self.error: Exception | None = None
        self.done = False


class Store:
    def __init__(self, path: Path | str, durability: Durability = Durability.normal) -> None:
        self.path = path
        self.durability = durability
        self._lock = threading.RLock()
        self._group = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._leading = False
        self._batch_owner: int | None = None
        self._refused: str | None = None
        self._identity: tuple[int, int] | None = None
        if str(path) != ":memory:" and not os.path.exists(path):  # SQLite gives -wal/-shm the file's mode
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        try:
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durability is Durability.full else 'NORMAL'}")
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the store {path}: {e}") from None
        if str(path) != ":memory:":
            for name in (str(path), f"{path}-wal", f"{path}-shm"):
                with contextlib.suppress(OSError):  # (a file of another user's: left as it is)
                    os.chmod(name, FILE_MODE)
            st = os.stat(path)
            self._identity = (st.st_dev, st.st_ino)

    @classmethod
    def in_state_folder(cls, folder: Path, durability: Durability = Durability.normal) -> Store:
        make_private_folder(folder)
        return cls(folder / STORE_FILE, durability)

    def intact(self) -> str | None:
        """None while the file this store writes is still the one at its path; else what happened
        (someone deleted or replaced it: commits would go into a file nobody will ever read)."""
        if self._identity is None:
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} was deleted"
        except OSError as e:
            return f"{self.path} cannot be looked at ({e.strerror})"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"{self.path} was replaced by another file"
        return None

    def refuse(self, reason: str) -> None:
        """Every write from now on fails with `reason` (the state folder is gone: accept nothing more)."""
        self._refused = reason

    def _migrate(self) -> None:
        with self._lock:
            self._conn.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        with self.transaction() as tx:
            row = tx.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"the store {self.path} was written by a newer lambdad (schema {version})")
            # Schema 2: FIFO groups, deduplication, sequence numbers and receipt handles for messages.
            # Schema 3: the attributes SQS sets itself beside the sender's (AWSTraceHeader,
            # DeadLetterQueueSourceArn), as one JSON object.
            have = {r[1] for r in tx.execute("PRAGMA table_info(messages)")}
            for column, kind in (("group_id", "TEXT"), ("dedup_id", "TEXT"), ("sequence", "INTEGER"),
                                 ("receipt", "TEXT"), ("system_attributes", "TEXT NOT NULL DEFAULT '{}'")):
                if column not in have:
                    tx.execute(f"ALTER TABLE messages ADD COLUMN {column} {kind}")
            # Schema 3 also: the trace header of an async event (the same trace for all its retries).
            if "trace" not in {r[1] for r in tx.execute("PRAGMA table_info(events)")}:
                tx.execute("ALTER TABLE events ADD COLUMN trace TEXT")
            for statement in INDEXES.strip().splitlines():
                tx.execute(statement)
            tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (one commit); rolled back if the block raises.

        A commit that fails (a full disk) leaves no transaction open behind it, so the next one can
        begin once the disk has room; it raises `StoreUnavailable`."""
        with self._lock:
            if self._refused is not None:
                raise StoreUnavailable(self._refused)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise unavailable(e) from e
            try:
                yield self._conn
            except BaseException:
                self._rollback()
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                self._rollback()
                raise unavailable(e) from e

    def _rollback(self) -> None:
        """SQLite may have rolled back by itself (SQLITE_FULL, SQLITE_IOERR): then there is nothing to do."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` in a write transaction shared with what other threads write at the same moment.

        Group commit: while one thread commits (one fsync with `durability: full`), the others queue
        up, and the next commit takes all of them. Each op runs in its own savepoint, so one that
        raises is undone alone and its exception goes back to its own caller.
        """
        if self._batch_owner == threading.get_ident():  # inside this thread's batch(): no commit of its own
            return self._in_savepoint(op)
        pending = _Pending(op)
        with self._group:
            self._queue.append(pending)
            while not pending.done:
                if self._leading:
                    self._group.wait()
                    continue
                self._leading = True
                batch, self._queue = self._queue, []
                self._group.release()
                try:
                    self._commit(batch)
                finally:
                    self._group.acquire()
                    self._leading = False
                    self._group.notify_all()
        if pending.error is not None:
            if isinstance(pending.error, sqlite3.OperationalError):
                raise unavailable(pending.error) from pending.error
            raise pending.error
        return pending.result

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every `write` this thread makes inside the block joins one transaction: one commit for a
        burst. Other threads' writes wait until the block ends, so keep it short."""
        with self.transaction():
            self._batch_owner = threading.get_ident()
            try:
                yield
            finally:
                self._batch_owner = None

    def _in_savepoint(self, op: Callable[[sqlite3.Connection], T]) -> T:
        self._conn.execute("SAVEPOINT op")
        try:
            result = op(self._conn)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # (gone if SQLite rolled the whole transaction back)
                self._conn.execute("ROLLBACK TO op")
                self._conn.execute("RELEASE op")
            raise
        self._conn.execute("RELEASE op")
        return result

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self.transaction() as tx:
                if len(batch) == 1:  # alone: the transaction itself is the op's savepoint
                    batch[0].result = batch[0].op(tx)
                else:
                    for p in batch:
                        tx.execute("SAVEPOINT op")
                        try:
                            p.result = p.op(tx)
                        except Exception as e:  # undo this op only; its caller gets the exception
                            if not tx.in_transaction:  # SQLite rolled it all back (a full disk): all failed
                                raise
                            tx.execute("ROLLBACK TO op")
                            p.error = e
                        tx.execute("RELEASE op")
        except Exception as e:  # the op or the commit failed: so did every op in it
            for p in batch:
                p.error = p.error or e
        for p in batch:
            p.done = True

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Consistent reads without taking the write lock."""
        with self._lock:
            yield self._conn

    def data_version(self) -> int:
        """Changes whenever another connection (another process) commits: cheap to poll."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
