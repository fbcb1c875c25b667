"""Kinesis and DynamoDB Streams vocabulary as pure functions: record checks, shards by hash key,
and the shard ids and sequence numbers clients see.

A partition key picks its shard as Kinesis does: the MD5 of the key, as a 128-bit number, falls
in one shard's share of the hash key range. The store keeps a record's number in its shard (1, 2,
3...) and positions as those numbers; the ids here are derived from them, so their shape can
change without touching what is stored. Payload builders (`lambdad.payloads`) import this module:
it imports nothing above the manifest.
"""

from __future__ import annotations

import hashlib

from lambdad.errors import ProtocolError
from lambdad.manifest.model import Stream

HASH_SPACE = 2**128
MAX_RECORD_BYTES = 1024 * 1024  #: a record's data (Kinesis: 1 MiB before base64)
MAX_PARTITION_KEY = 256  #: characters
#: The store keeps this much of a key's hash (SQLite integers are 64-bit): enough to split lanes.
SMALL_HASH_SPACE = 2**62
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
    """PutRecord's checks of a record, the same for every face (the API checks the types first).

    Raises:
        StreamError: a `ValidationException` in Kinesis's words.
    """
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
