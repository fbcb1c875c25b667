"""The Kinesis API in-process over a real store: typed parameters, Kinesis's errors, one error mapper."""

from __future__ import annotations

import base64
import logging
import sqlite3
from pathlib import Path

import pytest

from lambdad.manifest.model import Stream
from lambdad.store import streams
from tests.component.protocol_apis import Apis

DATA = base64.b64encode(b"hello").decode()


@pytest.fixture
def apis(tmp_path: Path):
    a = Apis(tmp_path)
    yield a
    a.close()


def refused(apis: Apis, operation: str, request: object, code: str, status: int = 400) -> str:
    got, headers, doc = apis.call_kinesis(operation, request)
    assert (got, doc["__type"]) == (status, code), doc
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert apis.rows("stream_records") == 0
    return doc["message"]


def put(**fields) -> dict:
    return {"StreamName": "clicks", "PartitionKey": "k", "Data": DATA, **fields}


@pytest.mark.parametrize(
    ("operation", "request_", "code"),
    [
        ("PutRecord", put(Data=5), "SerializationException"),
        ("PutRecord", put(Data=["aGk="]), "SerializationException"),
        ("PutRecord", put(Data={"a": 1}), "SerializationException"),
        ("PutRecord", put(Data="not base64!"), "SerializationException"),
        ("PutRecord", put(Data="ä"), "SerializationException"),
        ("PutRecord", put(Data=None), "ValidationException"),
        ("PutRecord", put(PartitionKey=7), "SerializationException"),
        ("PutRecord", put(PartitionKey=""), "ValidationException"),
        ("PutRecord", put(PartitionKey="k" * 257), "ValidationException"),
        ("PutRecord", put(PartitionKey="\ud800"), "SerializationException"),
        ("PutRecord", put(StreamName=["clicks"]), "SerializationException"),
        ("PutRecord", put(StreamName={"a": 1}), "SerializationException"),
        ("PutRecord", put(StreamName="a b"), "ValidationException"),
        ("PutRecord", put(StreamName="nope"), "ResourceNotFoundException"),
        ("PutRecord", {"PartitionKey": "k", "Data": DATA}, "InvalidArgumentException"),
        ("PutRecord", put(StreamARN=3, StreamName=None), "SerializationException"),
        ("PutRecord", put(ExplicitHashKey=5), "SerializationException"),
        ("PutRecord", put(ExplicitHashKey=str(2**128)), "InvalidArgumentException"),
        ("PutRecord", put(ExplicitHashKey="01"), "InvalidArgumentException"),
        ("PutRecord", put(SequenceNumberForOrdering="x"), "ValidationException"),
        ("PutRecord", put(Data=base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()), "ValidationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": 5}, "SerializationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": "x"}, "SerializationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": [5]}, "SerializationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": []}, "ValidationException"),
        ("PutRecords", {"StreamName": "clicks"}, "ValidationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": [{"PartitionKey": "k", "Data": DATA}] * 501},
         "ValidationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": [{"PartitionKey": "k", "Data": DATA},
                                                            {"PartitionKey": "k", "Data": 1}]}, "SerializationException"),
        ("PutRecords", {"StreamName": "clicks", "Records": [
            {"PartitionKey": "k", "Data": base64.b64encode(b"x" * 1024 * 1024).decode()}] * 6},
         "InvalidArgumentException"),
        ("DescribeStream", {"StreamName": "clicks", "Limit": "10"}, "SerializationException"),
        ("DescribeStream", {"StreamName": "clicks", "Limit": 0}, "ValidationException"),
        ("DescribeStream", {"StreamName": 1}, "SerializationException"),
        ("ListShards", {"StreamName": "clicks", "MaxResults": []}, "SerializationException"),
        ("ListStreams", {"Limit": "abc"}, "SerializationException"),
        ("CreateStream", {"StreamName": ["x"]}, "SerializationException"),
        ("CreateStream", {"StreamName": "clicks", "ShardCount": "1"}, "SerializationException"),
        ("PutRecord", b"[]", "SerializationException"),
        ("PutRecord", b"{", "SerializationException"),
        ("PutRecord", b"\xff", "SerializationException"),
        ("Nope", {}, "UnknownOperationException"),
    ],
)
def test_wrong_input_gets_kinesis_errors(apis: Apis, operation, request_, code):
    refused(apis, operation, request_, code)


def test_records_are_put(apis: Apis):
    status, _, doc = apis.call_kinesis("PutRecords", {"StreamName": "clicks", "Records": [
        {"PartitionKey": "a", "Data": DATA}, {"PartitionKey": "b", "Data": "", "ExplicitHashKey": "0"}]})
    assert status == 200 and doc["FailedRecordCount"] == 0 and len(doc["Records"]) == 2
    assert apis.call_kinesis("PutRecord", put(SequenceNumberForOrdering="0"))[0] == 200
    assert apis.rows("stream_records") == 3


def test_answers_carry_kinesis_shaped_ids_unique_across_streams(apis: Apis):
    apis.kinesis.manifest.streams["views"] = Stream("views", shards=2)
    numbers = {}
    for name in ("clicks", "views"):
        _, _, doc = apis.call_kinesis("PutRecords", {"StreamName": name, "Records": [
            {"PartitionKey": "k", "Data": DATA, "ExplicitHashKey": "0"} for _ in range(12)]})
        got = [r["SequenceNumber"] for r in doc["Records"]]
        assert {r["ShardId"] for r in doc["Records"]} == {"shardId-000000000000"}
        assert all(len(n) == 56 for n in got) and got == sorted(got) == sorted(got, key=int)
        _, _, one = apis.call_kinesis("PutRecord", put(StreamName=name, ExplicitHashKey="0"))
        assert one["SequenceNumber"] > got[-1]
        _, _, shards = apis.call_kinesis("ListShards", {"StreamName": name})
        start = shards["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"]
        _, _, described = apis.call_kinesis("DescribeStream", {"StreamName": name})
        assert described["StreamDescription"]["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"] == start
        assert len(start) == 56 and start < got[0]
        numbers[name] = set(got)
    assert not numbers["clicks"] & numbers["views"]


def test_validation_messages_name_the_member(apis: Apis):
    message = refused(apis, "PutRecords", {"StreamName": "clicks", "Records": [{"PartitionKey": "k"}]},
                      "ValidationException")
    assert message == ("1 validation error detected: Value null at 'records.1.member.data' failed to satisfy "
                       "constraint: Member must not be null")


def test_an_unexpected_failure_is_an_internal_failure_logged_once(apis: Apis, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(streams, "put", broken)
    with caplog.at_level(logging.ERROR):
        refused(apis, "PutRecord", put(), "InternalFailure", 500)
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [KeyError]


def test_a_full_disk_is_a_service_error_and_commits_nothing(apis: Apis, caplog):
    with apis.store.transaction() as tx:
        tx.execute(f"PRAGMA max_page_count = {tx.execute('PRAGMA page_count').fetchone()[0]}")
    big = base64.b64encode(b"x" * 500_000).decode()
    message = refused(apis, "PutRecords", {"StreamName": "clicks", "Records": [
        {"PartitionKey": "a", "Data": DATA}, {"PartitionKey": "b", "Data": big}]}, "ServiceUnavailable", 503)
    assert "database or disk is full" in message and not any(r.exc_info for r in caplog.records)


def test_a_locked_store_is_a_service_error(apis: Apis, monkeypatch):
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(streams, "put", locked)
    refused(apis, "PutRecord", put(), "ServiceUnavailable", 503)
