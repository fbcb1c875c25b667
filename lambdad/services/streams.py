"""Local Kinesis and DynamoDB streams, the one way in for every face and the stream poller.

`PutRecord`, `PutRecords` and `lambdad stream put` put through `put`/`put_batch`, so they refuse
the same records with the same Kinesis errors; the poller reads, starts, checkpoints and expires
through the rest. The service owns the clock (a record's arrival time), the transactions, and
waking the poller after a put (`on_put`); the store below it only runs SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lambdad.clock import Clock
from lambdad.manifest.model import Stream
from lambdad.store import Store, streams
from lambdad.store.streams import StreamRecord
from lambdad.stream_vocabulary import SMALL_HASH_SPACE, check_record, key_hash, shard_of

#: A record to put: partition key, data, and the explicit hash key that overrides the key's (or None).
Item = tuple[str, bytes, int | None]

__all__ = ["Item", "LaneProgress", "StreamRecord", "Streams"]

T = TypeVar("T")


@dataclass(frozen=True)
class LaneProgress:
    """Where one lane of a mapping is: `position` is the last record done (None before any daemon
    ran the mapping), `lag` the records still to do (None when the start is not known yet)."""

    shard: int
    lane: int
    position: int | None
    lag: int | None


class Streams:
    def __init__(self, store: Store, clock: Clock, on_put: Callable[[], None] = lambda: None) -> None:
        """`on_put` wakes whoever reads the streams (the poller) after records were committed."""
        self.store = store
        self.clock = clock
        self._on_put = on_put

    # -- putting --------------------------------------------------------------------------------------

    @staticmethod
    def check(partition_key: str, data: bytes) -> None:
        """What `put` refuses, for a face that reports errors in its request's order before putting.

        Raises:
            StreamError: the record as Kinesis would refuse it.
        """
        check_record(partition_key, data)

    def put(self, stream: Stream, partition_key: str, data: bytes,
            explicit_hash_key: int | None = None) -> StreamRecord:
        """Commit one record, arrived now.

        Raises:
            StreamError: the record as Kinesis would refuse it (nothing is put).
        """
        (record,) = self.put_batch(stream, [(partition_key, data, explicit_hash_key)])
        return record

    def put_batch(self, stream: Stream, items: Sequence[Item]) -> list[StreamRecord]:
        """Commit the records together, in order, once every one passed the checks.

        Raises:
            StreamError: the first record Kinesis would refuse (nothing is put).
        """
        for partition_key, data, _ in items:
            check_record(partition_key, data)

        def write(tx: sqlite3.Connection) -> list[StreamRecord]:
            now = self.clock.time()
            return [streams.put(tx, stream.name, shard_of(key, stream.shards, explicit), key,
                                key_hash(key) % SMALL_HASH_SPACE, data, now)
                    for key, data, explicit in items]

        records = self.store.write(write)
        self._on_put()
        return records

    # -- reading --------------------------------------------------------------------------------------

    def read(self, stream: str, shard: int, after: int, limit: int, lane: int = 0,
             lanes: int = 1) -> tuple[int, list[StreamRecord]]:
        """The shard's last sequence number, and up to `limit` records of the lane after `after`."""
        with self.store.reading() as tx:
            return (streams.last_seq(tx, stream, shard),
                    streams.read(tx, stream, shard, after, limit, lane, lanes))

    def shards(self, stream: Stream) -> set[int]:
        """The stream's shards, and every shard a record was ever put into (if the count shrank)."""
        with self.store.reading() as tx:
            return set(range(stream.shards)) | streams.written_shards(tx, stream.name)

    def start(self, stream: str, shard: int, starting_position: str, timestamp: float | None) -> int:
        """The position a mapping new to the shard starts from (records after it are to do)."""
        with self.store.reading() as tx:
            if starting_position == "LATEST":
                return streams.last_seq(tx, stream, shard)
            if starting_position == "AT_TIMESTAMP" and timestamp is not None:
                return streams.seq_before(tx, stream, shard, timestamp)
        return 0

    # -- positions ------------------------------------------------------------------------------------

    def positions(self, mapping: str) -> dict[tuple[int, int], int]:
        """The mapping's stored position by (shard, lane)."""
        with self.store.reading() as tx:
            return streams.positions(tx, mapping)

    def checkpoint(self, mapping: str, shard: int, lane: int, seq: int,
                   along: Callable[[sqlite3.Connection], T] | None = None) -> T | None:
        """Move the lane's position to `seq` (never back); `along` writes in the same transaction
        (an on-failure record), so the two commit together or not at all. Returns what `along` did."""
        def write(tx: sqlite3.Connection) -> T | None:
            done = along(tx) if along is not None else None
            streams.checkpoint(tx, mapping, shard, lane, seq)
            return done

        return self.store.write(write)

    def reset_positions(self, mapping: str, shards: dict[int, dict[int, int]]) -> None:
        """Set the lanes of each shard anew, by shard then lane (a changed layout): they may move back."""
        self.store.write(lambda tx: [streams.reset_positions(tx, mapping, shard, lanes)
                                     for shard, lanes in shards.items()])

    def progress(self, mapping: str, stream: Stream, lanes: int, from_start: bool) -> list[LaneProgress]:
        """Each lane's position and lag, in order; before any daemon ran the mapping, one row per
        shard, with its lag only if the mapping will start from the first record (`from_start`)."""
        with self.store.reading() as tx:
            stored = streams.positions(tx, mapping)
            if stored:
                return [LaneProgress(shard, lane, seq, streams.lag(tx, stream.name, shard, seq, lane, lanes))
                        for (shard, lane), seq in sorted(stored.items())]
            return [LaneProgress(shard, 0, None, streams.lag(tx, stream.name, shard, 0) if from_start else None)
                    for shard in range(stream.shards)]

    # -- retention ------------------------------------------------------------------------------------

    def expire(self, configs: Iterable[Stream], now: float) -> int:
        """Drop the records past their stream's retention at `now`; returns how many."""
        return sum(self.store.write(lambda tx: [streams.expire(tx, s.name, now - s.retention_s)
                                                for s in configs]))
