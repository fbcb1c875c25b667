"""Local streams' persistence: ordered shards of records, and the positions mappings reached.

Sequence numbers only grow within a shard, even when old records expire. A mapping's position is
the last record it finished in a shard (or, with a parallelization factor, in one of the shard's
lanes); it is stored with the same transaction that settles the batch, so a restart resumes
exactly there. The store keeps a record's number in its shard (1, 2, 3...) and positions as those
numbers; which shard a key goes to, the ids clients see and what Kinesis refuses are
`lambdad.stream_vocabulary`'s, and callers pass the time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamRecord:
    stream: str
    shard: int
    seq: int
    partition_key: str
    key_hash: int
    data: bytes
    arrived_at: float

    def lane(self, lanes: int) -> int:
        return self.key_hash % lanes


_COLUMNS = "stream, shard, seq, partition_key, key_hash, data, arrived_at"


def put(tx: sqlite3.Connection, stream: str, shard: int, partition_key: str, key_hash: int, data: bytes,
        now: float) -> StreamRecord:
    """Append a record to `shard`, numbered one past the shard's last (`key_hash` splits lanes)."""
    tx.execute("INSERT INTO stream_sequences (stream, shard, last) VALUES (?, ?, 1) "
               "ON CONFLICT (stream, shard) DO UPDATE SET last = last + 1", (stream, shard))
    seq = int(tx.execute("SELECT last FROM stream_sequences WHERE stream = ? AND shard = ?",
                         (stream, shard)).fetchone()[0])
    record = StreamRecord(stream, shard, seq, partition_key, key_hash, data, now)
    tx.execute(f"INSERT INTO stream_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (stream, shard, seq, partition_key, key_hash, data, now))
    return record


def read(tx: sqlite3.Connection, stream: str, shard: int, after: int, limit: int, lane: int = 0,
         lanes: int = 1) -> list[StreamRecord]:
    """Up to `limit` records after sequence `after`, in order (only `lane`'s with several lanes)."""
    if lanes == 1:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM stream_records WHERE stream = ? AND shard = ? AND seq > ? "
                          "ORDER BY seq LIMIT ?", (stream, shard, after, limit)).fetchall()
    else:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM stream_records WHERE stream = ? AND shard = ? AND seq > ? "
                          "AND key_hash % ? = ? ORDER BY seq LIMIT ?", (stream, shard, after, lanes, lane, limit)
                          ).fetchall()
    return [StreamRecord(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6]) for r in rows]


def expire(tx: sqlite3.Connection, stream: str, arrived_before: float) -> int:
    """Drop the stream's records that arrived at or before `arrived_before`."""
    return tx.execute("DELETE FROM stream_records WHERE stream = ? AND arrived_at <= ?",
                      (stream, arrived_before)).rowcount


def last_seq(tx: sqlite3.Connection, stream: str, shard: int) -> int:
    row = tx.execute("SELECT last FROM stream_sequences WHERE stream = ? AND shard = ?", (stream, shard)).fetchone()
    return int(row[0]) if row else 0


def seq_before(tx: sqlite3.Connection, stream: str, shard: int, timestamp: float) -> int:
    """The position just before the first record that arrived at or after `timestamp`."""
    row = tx.execute("SELECT MIN(seq) FROM stream_records WHERE stream = ? AND shard = ? AND arrived_at >= ?",
                     (stream, shard, timestamp)).fetchone()
    return (row[0] - 1) if row and row[0] is not None else last_seq(tx, stream, shard)


def written_shards(tx: sqlite3.Connection, stream: str) -> set[int]:
    """Every shard a record was ever put into (more than the manifest's count, if it shrank)."""
    return {row[0] for row in tx.execute("SELECT shard FROM stream_sequences WHERE stream = ?", (stream,))}


def positions(tx: sqlite3.Connection, mapping: str) -> dict[tuple[int, int], int]:
    rows = tx.execute("SELECT shard, lane, seq FROM stream_positions WHERE mapping = ?", (mapping,)).fetchall()
    return {(shard, lane): seq for shard, lane, seq in rows}


def checkpoint(tx: sqlite3.Connection, mapping: str, shard: int, lane: int, seq: int) -> None:
    tx.execute("INSERT INTO stream_positions (mapping, shard, lane, seq) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (mapping, shard, lane) DO UPDATE SET seq = MAX(seq, excluded.seq)",
               (mapping, shard, lane, seq))


def reset_positions(tx: sqlite3.Connection, mapping: str, shard: int, lanes: dict[int, int]) -> None:
    """Set a shard's lanes anew (the parallelization factor changed): positions may move back."""
    tx.execute("DELETE FROM stream_positions WHERE mapping = ? AND shard = ?", (mapping, shard))
    tx.executemany("INSERT INTO stream_positions (mapping, shard, lane, seq) VALUES (?, ?, ?, ?)",
                   [(mapping, shard, lane, seq) for lane, seq in lanes.items()])


def lag(tx: sqlite3.Connection, stream: str, shard: int, after: int, lane: int = 0, lanes: int = 1) -> int:
    """Records of the shard (of the lane, with several) after position `after`."""
    if lanes == 1:
        return tx.execute("SELECT COUNT(*) FROM stream_records WHERE stream = ? AND shard = ? AND seq > ?",
                          (stream, shard, after)).fetchone()[0]
    return tx.execute("SELECT COUNT(*) FROM stream_records WHERE stream = ? AND shard = ? AND seq > ? "
                      "AND key_hash % ? = ?", (stream, shard, after, lanes, lane)).fetchone()[0]
