"""Local streams: ordered shards of records, Kinesis-style, and the positions mappings reached.

A partition key picks its shard as Kinesis does: the MD5 of the key, as a 128-bit number, falls
in one shard's share of the hash key range. Sequence numbers only grow within a shard, even when
old records expire. A mapping's position is the last record it finished in a shard (or, with a
parallelization factor, in one of the shard's lanes); it is stored with the same transaction that
settles the batch, so a restart resumes exactly there.

The store keeps a record's number in its shard (1, 2, 3...) and positions as those numbers; the
sequence numbers and shard ids clients see are derived from them, so their shape can change
without touching what is stored.
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
#: Kinesis sequence numbers are 56 digits: this prefix, 14 digits naming the stream, the shard (6
#: digits) and the record's number in the shard (32). Fixed width, so they sort the same as numbers
#: and as text, and a stream's numbers are not another's.
_SEQ_PREFIX = "4963"
#: The shape before the stream was part of it (4959..., then the shard and the record's number):
#: still read, and below every number of the new shape, so order holds across an upgrade.
_OLD_SEQ_BASE = 4959 * 10**52
_OLD_SHARD_FACTOR = 10**40
#: DynamoDB Streams' sequence numbers (21 to 40 digits): a 5, 9 digits naming the stream, the shard
#: (4 digits) and the record's number (14): 28 digits, above every number of the old 25-digit shape.
_DDB_PREFIX = "5"
#: DynamoDB shard ids are `shardId-` and a 20-digit creation time in milliseconds, then 8 hex digits.
_DDB_SHARD_CREATED_MS = 1_700_000_000_000


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
    """A Kinesis shard id (the same in every stream, as on Kinesis: a record's id adds its sequence number)."""
    return f"shardId-{shard:012d}"


def _tag(kind: str, stream: str, digits: int) -> str:
    """Digits that tell one stream's sequence numbers from another's (stable: derived from the name)."""
    return str(int(hashlib.md5(f"{kind}:{stream}".encode()).hexdigest(), 16) % 10**digits).zfill(digits)


def sequence_number(stream: str, shard: int, seq: int) -> str:
    """The Kinesis sequence number of record `seq` of a stream's shard."""
    return f"{_SEQ_PREFIX}{_tag('kinesis', stream, 14)}{shard:06d}{seq:032d}"


def parse_sequence_number(text: str) -> tuple[int, int]:
    """(shard, seq) of a Kinesis sequence number this module made, in the current or the old shape."""
    if text.startswith(_SEQ_PREFIX) and len(text) == 56:
        return int(text[18:24]), int(text[24:])
    value = int(text) - _OLD_SEQ_BASE
    return value // _OLD_SHARD_FACTOR, value % _OLD_SHARD_FACTOR


def ddb_sequence_number(stream: str, shard: int, seq: int) -> str:
    """The DynamoDB Streams sequence number of record `seq` of a stream's shard."""
    return f"{_DDB_PREFIX}{_tag('dynamodb', stream, 9)}{shard:04d}{seq:014d}"


def ddb_shard_id(stream: str, shard: int) -> str:
    """A DynamoDB Streams shard id, such as `shardId-00000001700000000000-1a2b3c4d`."""
    suffix = hashlib.md5(f"dynamodb:{stream}:{shard}".encode()).hexdigest()[:8]
    return f"shardId-{_DDB_SHARD_CREATED_MS + shard:020d}-{suffix}"


def number_of(stream: Stream, shard: int, seq: int) -> str:
    """The sequence number a record shows in its stream's format."""
    if stream.format == "dynamodb":
        return ddb_sequence_number(stream.name, shard, seq)
    return sequence_number(stream.name, shard, seq)


def shard_name(stream: Stream, shard: int) -> str:
    """The shard's id in its stream's format."""
    return ddb_shard_id(stream.name, shard) if stream.format == "dynamodb" else shard_id(shard)


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
        """Its Kinesis sequence number (`number_of` gives a record's number in either format)."""
        return sequence_number(self.stream, self.shard, self.seq)

    @property
    def shard_id(self) -> str:
        """Its Kinesis shard id (`shard_name` gives a shard's id in either format)."""
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
