"""Stream record ids with AWS's shapes: unique across streams (idempotency keyed on `eventID`
drops nothing), growing within a shard as numbers and as text, and readable in the old shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, KinesisDataStreamModel

from lambdad import stream_vocabulary as stream_ids
from lambdad.manifest.model import Manifest, Stream
from lambdad.payloads.streams import dynamodb_record, kinesis_record, on_failure_record
from lambdad.store.streams import StreamRecord

CLICKS, VIEWS = Stream("clicks", shards=4), Stream("views", shards=4)
ORDERS, USERS = Stream("orders", format="dynamodb"), Stream("users", format="dynamodb")
MANIFEST = Manifest(Path("lambdad.yaml"), region="eu-west-1", account="111122223333", functions={},
                    streams={s.name: s for s in (CLICKS, VIEWS, ORDERS, USERS)})
CHANGE = b'{"eventName": "INSERT", "Keys": {"Id": {"N": "1"}}, "NewImage": {"Id": {"N": "1"}}}'


def record(stream: Stream, shard: int = 0, seq: int = 1) -> StreamRecord:
    return StreamRecord(stream.name, shard, seq, "k", 7, CHANGE if stream.format == "dynamodb" else b"x", 1.7e9)


@pytest.mark.parametrize(("shard", "seq"), [(0, 0), (0, 1), (3, 42), (63, 10**20), (5, 10**31)])
def test_kinesis_sequence_numbers_are_56_digits_and_read_back(shard, seq):
    number = stream_ids.sequence_number("clicks", shard, seq)
    assert len(number) == 56 and re.fullmatch(r"[1-9][0-9]{55}", number)
    assert stream_ids.parse_sequence_number(number) == (shard, seq)


@pytest.mark.parametrize(("shard", "seq"), [(0, 1), (3, 42), (63, 10**15)])
def test_old_kinesis_numbers_still_read_and_sort_below_new_ones(shard, seq):
    old = str(4959 * 10**52 + shard * 10**40 + seq)  # the shape earlier versions showed
    assert stream_ids.parse_sequence_number(old) == (shard, seq)
    new = stream_ids.sequence_number("clicks", 0, 1)
    assert len(old) == len(new) and old < new and int(old) < int(new)


@pytest.mark.parametrize("number", [
    lambda seq: stream_ids.sequence_number("clicks", 2, seq),
    lambda seq: stream_ids.ddb_sequence_number("orders", 0, seq),
])
def test_sequence_numbers_grow_within_a_shard_as_numbers_and_as_text(number):
    shown = [number(seq) for seq in (0, 1, 2, 9, 10, 99, 100, 12345, 10**9, 10**13)]
    assert shown == sorted(shown) == sorted(shown, key=int) and len(set(shown)) == len(shown)


def test_ids_differ_between_streams_for_the_same_shard_and_record():
    for shard, seq in [(0, 1), (1, 1), (0, 2)]:
        clicks, views = kinesis_record(record(CLICKS, shard, seq), MANIFEST, CLICKS), kinesis_record(
            record(VIEWS, shard, seq), MANIFEST, VIEWS)
        assert clicks["eventID"] != views["eventID"]
        orders, users = dynamodb_record(record(ORDERS, shard, seq), MANIFEST, ORDERS), dynamodb_record(
            record(USERS, shard, seq), MANIFEST, USERS)
        assert orders["eventID"] != users["eventID"]
        assert orders["dynamodb"]["SequenceNumber"] != users["dynamodb"]["SequenceNumber"]


def test_kinesis_records_have_aws_shapes():
    doc = kinesis_record(record(CLICKS, 2, 5), MANIFEST, CLICKS)
    number = doc["kinesis"]["sequenceNumber"]
    assert doc["eventID"] == f"shardId-000000000002:{number}" and len(number) == 56
    KinesisDataStreamModel(Records=[doc])


def test_dynamodb_records_have_aws_shapes_and_a_stable_event_id():
    doc = dynamodb_record(record(ORDERS, 0, 5), MANIFEST, ORDERS)
    assert re.fullmatch(r"[0-9a-f]{32}", doc["eventID"])
    assert doc["eventID"] == dynamodb_record(record(ORDERS, 0, 5), MANIFEST, ORDERS)["eventID"]  # retried: the same
    assert doc["eventID"] != dynamodb_record(record(ORDERS, 0, 6), MANIFEST, ORDERS)["eventID"]
    number = doc["dynamodb"]["SequenceNumber"]
    assert 21 <= len(number) <= 40 and re.fullmatch(r"[1-9][0-9]+", number)
    assert int(number) > int(f"4{0:04d}{10**15:020d}")  # above every number of the old shape
    DynamoDBStreamModel(Records=[doc])


@pytest.mark.parametrize(("stream", "pattern"), [
    (CLICKS, r"shardId-00000000000[0-3]"),
    (ORDERS, r"shardId-[0-9]{20}-[0-9a-f]{8}"),
])
def test_shard_ids_have_aws_shapes(stream, pattern):
    names = [stream_ids.shard_name(stream, shard) for shard in range(4)]
    assert all(re.fullmatch(pattern, n) and 20 <= len(n) <= 65 for n in names) and len(set(names)) == 4


def test_the_on_failure_record_names_the_dynamodb_shard_and_numbers():
    import json
    records = [record(ORDERS, 0, 3), record(ORDERS, 0, 4)]
    doc = json.loads(on_failure_record(MANIFEST, ORDERS, "f", records, "RetryAttemptsExhausted", 3, 1.7e9))
    info = doc["DDBStreamBatchInfo"]
    assert info["shardId"] == stream_ids.ddb_shard_id("orders", 0)
    assert info["startSequenceNumber"] == stream_ids.ddb_sequence_number("orders", 0, 3)
    assert info["endSequenceNumber"] == stream_ids.ddb_sequence_number("orders", 0, 4)
