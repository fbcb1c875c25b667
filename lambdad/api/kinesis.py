"""The Kinesis API on the daemon's API port (JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Operation>`):
enough for boto3's `kinesis` client and `aws kinesis put-record` to write to local streams.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from concurrent.futures import Executor
from typing import Any

from lambdad import stream_vocabulary as stream_ids
from lambdad.api.params import Params, answer_json, shown
from lambdad.errors import ProtocolError
from lambdad.manifest.model import Manifest, Stream
from lambdad.payloads.streams import stream_arn
from lambdad.services.streams import Item, StreamRecord, Streams
from lambdad.stream_vocabulary import StreamError

MAX_RECORD_BYTES = stream_ids.MAX_RECORD_BYTES
MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024  #: a PutRecords request's data and partition keys together
MAX_LIMIT = 10_000  #: DescribeStream's Limit, ListShards' MaxResults, ListStreams' Limit

KinesisError = StreamError

#: ExplicitHashKey's documented pattern; its value must also be below 2**128.
_HASH_KEY = re.compile(r"0|[1-9][0-9]{0,38}")
_STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")
_SEQUENCE = re.compile(r"0|[1-9][0-9]{0,128}")


def _member(name: str) -> str:
    """A parameter as Kinesis's validation messages name it (`Records.1.Data`: `records.1.member.data`)."""
    parts = [p[:1].lower() + p[1:] for p in name.split(".")]
    return ".".join(f"{p}.member" if p.isdigit() else p for p in parts)


class _Errors:
    """Kinesis's words for a parameter it refuses (JSON 1.1: a wrong type does not deserialize)."""

    def wrong_type(self, name: str, value: object, expected: str) -> KinesisError:
        return KinesisError("SerializationException", f"Value {shown(value)} at '{_member(name)}' cannot be read: "
                                                      f"expected {expected}")

    def missing(self, name: str) -> KinesisError:
        return KinesisError("ValidationException", f"1 validation error detected: Value null at '{_member(name)}' "
                                                   "failed to satisfy constraint: Member must not be null")

    def invalid(self, name: str, value: object, reason: str) -> KinesisError:
        return KinesisError("ValidationException", f"1 validation error detected: Value '{shown(value)}' at "
                                                   f"'{_member(name)}' failed to satisfy constraint: {reason}")


KINESIS_ERRORS = _Errors()


def error_response(error: ProtocolError) -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"__type": error.code, "message": str(error)}
    return error.status, [("content-type", "application/x-amz-json-1.1")], json.dumps(body).encode()


def shard_doc(stream: Stream, shard: int) -> dict:
    start, end = stream_ids.hash_range(shard, stream.shards)
    return {"ShardId": stream_ids.shard_id(shard), "HashKeyRange": {"StartingHashKey": str(start),
                                                                 "EndingHashKey": str(end)},
            "SequenceNumberRange": {"StartingSequenceNumber": stream_ids.sequence_number(stream.name, shard, 0)}}


def _number(record: StreamRecord) -> str:
    return stream_ids.sequence_number(record.stream, record.shard, record.seq)


class KinesisApi:
    def __init__(self, manifest: Manifest, streams: Streams, executor: Executor, created_at: float) -> None:
        """`streams` commits the records (and wakes the poller); `executor` runs its blocking writes."""
        self.manifest = manifest
        self.streams = streams
        self._executor = executor
        self._created_at = created_at

    async def handle(self, operation: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return await answer_json("Kinesis", operation, body, getattr(self, f"_op_{operation}", None), KINESIS_ERRORS,
                                 ("SerializationException", "UnknownOperationException"),
                                 "application/x-amz-json-1.1", error_response)

    # -- helpers --------------------------------------------------------------------------------------

    def _stream(self, params: Params) -> Stream:
        name = params.text("StreamName")
        arn = params.text("StreamARN")
        if name is None and arn is None:
            raise KinesisError("InvalidArgumentException", "Either StreamName or StreamARN should be provided.")
        if name is not None and not _STREAM_NAME.fullmatch(name):
            raise KINESIS_ERRORS.invalid("StreamName", name, "Member must satisfy regular expression pattern: "
                                         "[a-zA-Z0-9_.-]+ and have length between 1 and 128")
        name = name if name is not None else (arn or "").rsplit("/", 1)[-1]
        stream = self.manifest.streams.get(name)
        if stream is None or stream.format != "kinesis":
            raise KinesisError("ResourceNotFoundException",
                               f"Stream {name} under account {self.manifest.account} not found.")
        return stream

    def _record(self, params: Params) -> Item:
        key = params.required_text("PartitionKey")
        text = params.required_text("Data")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise KinesisError("SerializationException", f"Value at '{_member(params.prefix + 'Data')}' is not "
                                                         "valid base64") from None
        self.streams.check(key, data)  # here, so a request's errors come in Kinesis's order
        explicit = params.text("ExplicitHashKey")
        sequence = params.text("SequenceNumberForOrdering")
        if sequence is not None and not _SEQUENCE.fullmatch(sequence):
            raise KINESIS_ERRORS.invalid(params.prefix + "SequenceNumberForOrdering", sequence,
                                         "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})")
        if explicit is None:
            return key, data, None
        if not _HASH_KEY.fullmatch(explicit) or int(explicit) >= stream_ids.HASH_SPACE:
            raise KinesisError("InvalidArgumentException", f"Invalid ExplicitHashKey. ExplicitHashKey must be in the "
                                                           f"range: [0, {stream_ids.HASH_SPACE - 1}]. Specified value "
                                                           f"was {shown(explicit)}")
        return key, data, int(explicit)

    async def _put(self, stream: Stream, items: list[Item]) -> list[StreamRecord]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.streams.put_batch, stream, items)

    def _summary(self, stream: Stream) -> dict[str, Any]:
        return {"StreamName": stream.name, "StreamARN": stream_arn(self.manifest, stream), "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": "PROVISIONED"}, "StreamCreationTimestamp": self._created_at}

    # -- operations -----------------------------------------------------------------------------------

    async def _op_PutRecord(self, params: Params) -> dict:
        stream = self._stream(params)
        (record,) = await self._put(stream, [self._record(params)])
        return {"ShardId": stream_ids.shard_id(record.shard), "SequenceNumber": _number(record),
                "EncryptionType": "NONE"}

    async def _op_PutRecords(self, params: Params) -> dict:
        stream = self._stream(params)
        if not params.has("Records"):
            raise KINESIS_ERRORS.missing("Records")
        entries = params.objects("Records")
        if not 1 <= len(entries) <= MAX_PUT_RECORDS:
            raise KinesisError("ValidationException", "1 validation error detected: Value at 'records' failed to "
                               f"satisfy constraint: Member must have length between 1 and {MAX_PUT_RECORDS}")
        items = [self._record(params.entry(e, f"Records.{n}.")) for n, e in enumerate(entries, 1)]
        size = sum(len(data) + len(key.encode()) for key, data, _ in items)
        if size > MAX_PUT_RECORDS_BYTES:
            raise KinesisError("InvalidArgumentException", f"Records size exceeds {MAX_PUT_RECORDS_BYTES // 2**20} MB "
                                                           f"limit ({size} bytes)")
        records = await self._put(stream, items)
        return {"FailedRecordCount": 0, "EncryptionType": "NONE",
                "Records": [{"SequenceNumber": _number(r), "ShardId": stream_ids.shard_id(r.shard)} for r in records]}

    async def _op_CreateStream(self, params: Params) -> dict:
        """Streams come from the manifest: creating one of them is Kinesis's answer for a stream that
        exists (code that creates its stream at start-up and tolerates that runs as is)."""
        name = params.required_text("StreamName")
        params.integer("ShardCount", 1, 100_000, reason="Member must have value greater than or equal to 1")
        if name in self.manifest.streams and self.manifest.streams[name].format == "kinesis":
            raise KinesisError("ResourceInUseException",
                               f"Stream {name} under account {self.manifest.account} already exists.")
        raise KinesisError("InvalidArgumentException", f"lambdad's streams come from the manifest: add {name!r} "
                                                       "under `streams:` and save (it applies without a restart)")

    async def _op_ListStreams(self, params: Params) -> dict:
        params.integer("Limit", 1, MAX_LIMIT, reason=f"Member must have value between 1 and {MAX_LIMIT}")
        params.text("ExclusiveStartStreamName")
        params.text("NextToken")
        names = [n for n, s in self.manifest.streams.items() if s.format == "kinesis"]
        return {"StreamNames": names, "HasMoreStreams": False,
                "StreamSummaries": [self._summary(self.manifest.streams[n]) for n in names]}

    async def _op_DescribeStream(self, params: Params) -> dict:
        stream = self._stream(params)
        params.integer("Limit", 1, MAX_LIMIT, reason=f"Member must have value between 1 and {MAX_LIMIT}")
        params.text("ExclusiveStartShardId")
        return {"StreamDescription": {
            **self._summary(stream), "Shards": [shard_doc(stream, i) for i in range(stream.shards)],
            "HasMoreShards": False, "RetentionPeriodHours": max(1, int(stream.retention_s // 3600)),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE"}}

    async def _op_DescribeStreamSummary(self, params: Params) -> dict:
        stream = self._stream(params)
        return {"StreamDescriptionSummary": {
            **self._summary(stream), "RetentionPeriodHours": max(1, int(stream.retention_s // 3600)),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE",
            "OpenShardCount": stream.shards, "ConsumerCount": 0}}

    async def _op_ListShards(self, params: Params) -> dict:
        stream = self._stream(params)
        params.integer("MaxResults", 1, MAX_LIMIT, reason=f"Member must have value between 1 and {MAX_LIMIT}")
        params.text("NextToken")
        params.text("ExclusiveStartShardId")
        return {"Shards": [shard_doc(stream, i) for i in range(stream.shards)]}
