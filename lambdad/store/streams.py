"""Local streams: ordered shards of records, Kinesis-style, and the positions mappings reached.

A partition key picks its shard as Kinesis does: the MD5 of the key, as a 128-bit number, falls
in one shard's share of the hash key range. Sequence numbers only grow within a shard, even when
old records expire. A mapping's position is the last record it finished in a shard (or, with a
parallelization factor, in one of the shard's lanes); it is stored with the same transaction that
settles the batch, so a restart resumes exactly there.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from lambdad.errors import ProtocolError
from lambdad.manifest.model import Stream

HASH_SPACE = 2**128
MAX_RECORD_BYTES = 1024 * 1024  #: a record's data (Kinesis: 1 MiB before base64)
MAX_PARTITION_KEY = 256  #: characters
#: Sequence numbers look like Kinesis's 56-digit ones: a constant, the shard, the record's number.
_SEQ_BASE = 4959 * 10**52
_SHARD_FACTOR = 10**40


class StreamError(ProtocolError):
    """A record Kinesis would refuse; `code` is Kinesis's error (`ValidationException`, ...)."""


def check_record(partition_key: str, data: bytes) -> None:
    """PutRecord's checks of a record, shared with `lambdad stream put` (the API checks the types)."""
    try:
        partition_key.encode()
    except UnicodeEncodeError:
        raise StreamError("ValidationException", "1 validation error detected: Value at 'partitionKey' failed to "
                          "satisfy constraint: Member must be Unicode text") from None
    if not 1 <= len(partition_key) <= MAX_PARTITION_KEY:
        raise StreamError("ValidationException", "1 validation error detected: Value at 'partitionKey' failed to "
                          f"satisfy constraint: Member must have length between 1 and {MAX_PARTITION_KEY}")
    if len(data) > MAX_RECORD_BYTES:
        raise StreamError("ValidationException", "1 validation error detected: Value at 'data' failed to satisfy "
                          f"constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}")


def key_hash(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def shard_of(partition_key: str, shards: int, explicit_hash_key: int | None = None) -> int:
    h = key_hash(partition_key) if explicit_hash_key is None else explicit_hash_key
    return min(shards - 1, h * shards // HASH_SPACE)


def hash_range(shard: int, shards: int) -> tuple[int, int]:
    """The (starting, ending) hash keys of `shard`, as DescribeStream lists them."""
    start = -(-shard * HASH_SPACE // shards)
    end = -(-(shard + 1) * HASH_SPACE // shards) - 1
    return start, min(end, HASH_SPACE - 1)


def shard_id(shard: int) -> str:
    return f"shardId-{shard:012d}"


def sequence_number(shard: int, seq: int) -> str:
    return str(_SEQ_BASE + shard * _SHARD_FACTOR + seq)


def parse_sequence_number(text: str) -> tuple[int, int]:
    """(shard, seq) of a sequence number this module made."""
    value = int(text) - _SEQ_BASE
    return value // _SHARD_FACTOR, value % _SHARD_FACTOR


def ddb_sequence_number(shard: int, seq: int) -> str:
    """DynamoDB Streams' sequence numbers are 21 to 40 digits: a 4, the shard, the record's number."""
    return f"4{shard:04d}{seq:020d}"


def number_of(stream_format: str, shard: int, seq: int) -> str:
    """The sequence number a record shows in its stream's format."""
    return ddb_sequence_number(shard, seq) if stream_format == "dynamodb" else sequence_number(shard, seq)


@dataclass(frozen=True)
class StreamRecord:
    stream: str
    shard: int
    seq: int
    partition_key: str
    key_hash: int
    data: bytes
    arrived_at: float

    @property
    def sequence_number(self) -> str:
        return sequence_number(self.shard, self.seq)

    @property
    def shard_id(self) -> str:
        return shard_id(self.shard)

    def lane(self, lanes: int) -> int:
        return self.key_hash % lanes


_COLUMNS = "stream, shard, seq, partition_key, key_hash, data, arrived_at"


def put(tx: sqlite3.Connection, stream: Stream, partition_key: str, data: bytes, now: float,
        explicit_hash_key: int | None = None) -> StreamRecord:
    shard = shard_of(partition_key, stream.shards, explicit_hash_key)
    tx.execute("INSERT INTO stream_sequences (stream, shard, last) VALUES (?, ?, 1) "
               "ON CONFLICT (stream, shard) DO UPDATE SET last = last + 1", (stream.name, shard))
    seq = int(tx.execute("SELECT last FROM stream_sequences WHERE stream = ? AND shard = ?",
                         (stream.name, shard)).fetchone()[0])
    small_hash = key_hash(partition_key) % 2**62  # (SQLite integers are 64-bit)
    record = StreamRecord(stream.name, shard, seq, partition_key, small_hash, data, now)
    tx.execute(f"INSERT INTO stream_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (stream.name, shard, seq, partition_key, small_hash, data, now))
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


def expire(tx: sqlite3.Connection, stream: Stream, now: float) -> int:
    """Drop records older than the stream's retention."""
    return tx.execute("DELETE FROM stream_records WHERE stream = ? AND arrived_at <= ?",
                      (stream.name, now - stream.retention_s)).rowcount


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
