"""The Kinesis API on the daemon's API port (JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Operation>`):
enough for boto3's `kinesis` client and `aws kinesis put-record` to write to local streams.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from lambdad.events.streams import stream_arn
from lambdad.manifest.model import Manifest, Stream
from lambdad.store import Store, streams

MAX_RECORD_BYTES = 1024 * 1024
MAX_PUT_RECORDS = 500


class KinesisError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


#: ExplicitHashKey's documented pattern; its value must also be below 2**128.
_HASH_KEY = re.compile(r"0|[1-9]\d{0,38}")


def error_response(error: KinesisError) -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"__type": error.code, "message": str(error)}
    return 400, [("content-type", "application/x-amz-json-1.1")], json.dumps(body).encode()


def shard_doc(shard: int, shards: int) -> dict:
    start, end = streams.hash_range(shard, shards)
    return {"ShardId": streams.shard_id(shard), "HashKeyRange": {"StartingHashKey": str(start),
                                                                 "EndingHashKey": str(end)},
            "SequenceNumberRange": {"StartingSequenceNumber": streams.sequence_number(shard, 0)}}


class KinesisApi:
    def __init__(self, manifest: Manifest, store: Store, executor: Executor, created_at: float,
                 on_put: Callable[[], None] = lambda: None) -> None:
        self.manifest = manifest
        self.store = store
        self._executor = executor
        self._created_at = created_at
        self._on_put = on_put

    async def handle(self, operation: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError
            handler = getattr(self, f"_op_{operation}", None)
            if handler is None:
                raise KinesisError("UnknownOperationException", f"lambdad does not implement {operation}")
            result = await handler(request)
        except ValueError:
            return error_response(KinesisError("SerializationException", "The request body is not a JSON object."))
        except KinesisError as e:
            return error_response(e)
        return 200, [("content-type", "application/x-amz-json-1.1")], json.dumps(result).encode()

    # -- helpers --------------------------------------------------------------------------------------

    def _stream(self, request: dict) -> Stream:
        name = request.get("StreamName") or str(request.get("StreamARN", "")).rsplit("/", 1)[-1]
        stream = self.manifest.streams.get(name)
        if stream is None or stream.format != "kinesis":
            raise KinesisError("ResourceNotFoundException",
                               f"Stream {name} under account {self.manifest.account} not found.")
        return stream

    @staticmethod
    def _record(entry: object) -> tuple[str, bytes, int | None]:
        if not isinstance(entry, dict):
            raise KinesisError("SerializationException", "a record is a JSON object")
        key = entry.get("PartitionKey")
        if not isinstance(key, str) or not 1 <= len(key) <= 256:
            raise KinesisError("ValidationException", "1 validation error detected: Value at 'partitionKey' failed "
                               "to satisfy constraint: Member must have length between 1 and 256")
        try:
            data = base64.b64decode(entry.get("Data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise KinesisError("SerializationException", "Data must be base64") from None
        if len(data) > MAX_RECORD_BYTES:
            raise KinesisError("ValidationException", "1 validation error detected: Value at 'data' failed to "
                               "satisfy constraint: Member must have length less than or equal to 1048576")
        explicit = entry.get("ExplicitHashKey")
        if explicit is None:
            return key, data, None
        if not isinstance(explicit, str) or not _HASH_KEY.fullmatch(explicit) or int(explicit) >= streams.HASH_SPACE:
            raise KinesisError("InvalidArgumentException", f"Invalid ExplicitHashKey. ExplicitHashKey must be in the "
                                                           f"range: [0, {streams.HASH_SPACE - 1}]. Specified value "
                                                           f"was {explicit}")
        return key, data, int(explicit)

    async def _put(self, stream: Stream, items: list[tuple[str, bytes, int | None]]) -> list[streams.StreamRecord]:
        def write(tx) -> list[streams.StreamRecord]:
            now = time.time()
            return [streams.put(tx, stream, key, data, now, explicit) for key, data, explicit in items]

        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(self._executor, self.store.write, write)
        self._on_put()
        return records

    def _summary(self, stream: Stream) -> dict[str, Any]:
        return {"StreamName": stream.name, "StreamARN": stream_arn(self.manifest, stream), "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": "PROVISIONED"}, "StreamCreationTimestamp": self._created_at}

    # -- operations -----------------------------------------------------------------------------------

    async def _op_PutRecord(self, request: dict) -> dict:
        stream = self._stream(request)
        (record,) = await self._put(stream, [self._record(request)])
        return {"ShardId": record.shard_id, "SequenceNumber": record.sequence_number, "EncryptionType": "NONE"}

    async def _op_PutRecords(self, request: dict) -> dict:
        stream = self._stream(request)
        entries = request.get("Records") or []
        if not 1 <= len(entries) <= MAX_PUT_RECORDS:
            raise KinesisError("ValidationException", "1 validation error detected: Value at 'records' failed to "
                               "satisfy constraint: Member must have length between 1 and 500")
        records = await self._put(stream, [self._record(e) for e in entries])
        return {"FailedRecordCount": 0, "EncryptionType": "NONE",
                "Records": [{"SequenceNumber": r.sequence_number, "ShardId": r.shard_id} for r in records]}

    async def _op_CreateStream(self, request: dict) -> dict:
        """Streams come from the manifest: creating one of them is Kinesis's answer for a stream that
        exists (code that creates its stream at start-up and tolerates that runs as is)."""
        name = request.get("StreamName")
        if isinstance(name, str) and name in self.manifest.streams and self.manifest.streams[name].format == "kinesis":
            raise KinesisError("ResourceInUseException",
                               f"Stream {name} under account {self.manifest.account} already exists.")
        raise KinesisError("InvalidArgumentException", f"lambdad's streams come from the manifest: add {name!r} "
                                                       "under `streams:` and save (it applies without a restart)")

    async def _op_ListStreams(self, request: dict) -> dict:
        names = [n for n, s in self.manifest.streams.items() if s.format == "kinesis"]
        return {"StreamNames": names, "HasMoreStreams": False,
                "StreamSummaries": [self._summary(self.manifest.streams[n]) for n in names]}

    async def _op_DescribeStream(self, request: dict) -> dict:
        stream = self._stream(request)
        return {"StreamDescription": {
            **self._summary(stream), "Shards": [shard_doc(i, stream.shards) for i in range(stream.shards)],
            "HasMoreShards": False, "RetentionPeriodHours": max(1, int(stream.retention_s // 3600)),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE"}}

    async def _op_DescribeStreamSummary(self, request: dict) -> dict:
        stream = self._stream(request)
        return {"StreamDescriptionSummary": {
            **self._summary(stream), "RetentionPeriodHours": max(1, int(stream.retention_s // 3600)),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE",
            "OpenShardCount": stream.shards, "ConsumerCount": 0}}

    async def _op_ListShards(self, request: dict) -> dict:
        stream = self._stream(request)
        return {"Shards": [shard_doc(i, stream.shards) for i in range(stream.shards)]}
