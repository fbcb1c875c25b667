"""The index of each bucket: every object lambdad has announced, as it was announced.

Comparing a folder with its index tells what changed while nobody watched (a stopped daemon, a
kernel queue that overflowed); it also keeps each key's sequencer growing and remembers the eTag a
rename carries over.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexedObject:
    key: str
    size: int
    mtime_ns: int
    etag: str
    version_id: str | None
    sequencer: str


_COLUMNS = "key, size, mtime_ns, etag, version_id, sequencer"


def get(tx: sqlite3.Connection, bucket: str, key: str) -> IndexedObject | None:
    row = tx.execute(f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
    return IndexedObject(*row) if row else None


def put(tx: sqlite3.Connection, bucket: str, obj: IndexedObject) -> None:
    tx.execute(
        f"INSERT OR REPLACE INTO objects (bucket, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (bucket, obj.key, obj.size, obj.mtime_ns, obj.etag, obj.version_id, obj.sequencer),
    )


def remove(tx: sqlite3.Connection, bucket: str, key: str) -> None:
    tx.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))


def under(tx: sqlite3.Connection, bucket: str, prefix: str) -> list[IndexedObject]:
    """Every indexed object whose key starts with `prefix` ("" for the whole bucket)."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key",
        (bucket, prefix, prefix + "\U0010ffff"),
    )
    return [IndexedObject(*r) for r in rows]


def count(tx: sqlite3.Connection, bucket: str) -> int:
    return int(tx.execute("SELECT COUNT(*) FROM objects WHERE bucket = ?", (bucket,)).fetchone()[0])


def known_bucket(tx: sqlite3.Connection, name: str, path: str) -> bool:
    """Whether this bucket, at this path, has been indexed before (a new one is indexed quietly)."""
    row = tx.execute("SELECT path FROM buckets WHERE name = ?", (name,)).fetchone()
    return row is not None and row[0] == path


def mark_indexed(tx: sqlite3.Connection, name: str, path: str, now: float) -> None:
    """Remember the bucket's folder; an index made for another folder no longer means anything."""
    row = tx.execute("SELECT path FROM buckets WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != path:
        tx.execute("DELETE FROM objects WHERE bucket = ?", (name,))
    tx.execute("INSERT OR REPLACE INTO buckets (name, path, indexed_at) VALUES (?, ?, ?)", (name, path, now))
