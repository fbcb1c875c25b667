"""The streams service over a real store on a fake clock: puts are checked and committed whole,
wake the reader once, and a checkpoint commits with what it carries or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad import stream_vocabulary as stream_ids
from lambdad.manifest.model import Stream
from lambdad.services.streams import Streams
from lambdad.store import Store
from lambdad.stream_vocabulary import StreamError
from tests.helpers import FakeClock

CLICKS = Stream("clicks", shards=4, retention_s=3600.0)


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_a_put_arrives_now_in_its_key_s_shard_and_wakes_the_reader_once(store: Store):
    clock, woken = FakeClock(), []
    service = Streams(store, clock, on_put=lambda: woken.append(1))
    records = service.put_batch(CLICKS, [("a", b"1", None), ("a", b"2", None), ("b", b"3", 0)])
    assert [r.shard for r in records] == [stream_ids.shard_of("a", 4)] * 2 + [0]
    assert {r.arrived_at for r in records} == {clock.time()} and woken == [1]
    top, read = service.read("clicks", records[0].shard, 0, 10)
    assert [r.data for r in read if r.partition_key == "a"] == [b"1", b"2"] and top >= 2


def test_one_refused_record_refuses_the_batch_and_puts_nothing(store: Store):
    woken: list[int] = []
    service = Streams(store, FakeClock(), on_put=lambda: woken.append(1))
    with pytest.raises(StreamError, match="partitionKey") as refused:
        service.put_batch(CLICKS, [("a", b"1", None), ("", b"2", None)])
    assert refused.value.code == "ValidationException"
    with pytest.raises(StreamError, match="less than or equal to 1048576"):
        service.put(CLICKS, "a", b"x" * (stream_ids.MAX_RECORD_BYTES + 1))
    assert woken == [] and service.shards(CLICKS) == {0, 1, 2, 3}
    assert all(service.read("clicks", shard, 0, 10) == (0, []) for shard in range(4))


def test_a_checkpoint_commits_with_what_it_carries_or_not_at_all(store: Store):
    service = Streams(store, FakeClock())

    def broken(tx) -> None:
        raise RuntimeError("the on-failure record could not be written")

    service.checkpoint("f/clicks", 0, 0, 3)
    with pytest.raises(RuntimeError):
        service.checkpoint("f/clicks", 0, 0, 7, along=broken)
    assert service.positions("f/clicks") == {(0, 0): 3}
    service.checkpoint("f/clicks", 0, 0, 2)  # never back
    assert service.positions("f/clicks") == {(0, 0): 3}


def test_expiry_drops_what_passed_the_retention(store: Store):
    clock = FakeClock()
    service = Streams(store, clock)
    old = service.put(CLICKS, "k", b"old")
    clock.advance(1800)
    service.put(CLICKS, "k", b"new")
    assert service.expire([CLICKS], clock.time() + 1800) == 1
    _, left = service.read("clicks", old.shard, 0, 10)
    assert [r.data for r in left] == [b"new"]
