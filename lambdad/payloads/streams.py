"""What Lambda's Kinesis and DynamoDB Streams mappings send a function, what they make of its
answer, and the on-failure record they send when they give records up. Pure functions.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from lambdad.clock import iso_millis
from lambdad.ids import new_request_id
from lambdad.manifest.model import Manifest, Stream
from lambdad.payloads.sqs import BatchFailure
from lambdad.stream_vocabulary import number_of, sequence_number, shard_id, shard_name

if TYPE_CHECKING:  # a row, read as plain data
    from lambdad.store.streams import StreamRecord

#: The time DynamoDB stream ARNs carry as their label (fixed: the local table never changes).
DDB_STREAM_LABEL = "1970-01-01T00:00:00.000"


def stream_arn(manifest: Manifest, stream: Stream) -> str:
    if stream.format == "dynamodb":
        return f"arn:aws:dynamodb:{manifest.region}:{manifest.account}:table/{stream.name}/stream/{DDB_STREAM_LABEL}"
    return f"arn:aws:kinesis:{manifest.region}:{manifest.account}:stream/{stream.name}"


def kinesis_record(record: StreamRecord, manifest: Manifest, stream: Stream) -> dict:
    number = sequence_number(record.stream, record.shard, record.seq)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.partition_key,
            "sequenceNumber": number,
            "data": base64.b64encode(record.data).decode(),
            "approximateArrivalTimestamp": round(record.arrived_at, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id(record.shard)}:{number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{manifest.account}:role/lambdad",
        "awsRegion": manifest.region,
        "eventSourceARN": stream_arn(manifest, stream),
    }


def change_record(change: dict) -> dict:
    """Validate a DynamoDB change (`eventName`, `Keys`, `NewImage`, `OldImage` in attribute-value
    JSON) as it is put into a `dynamodb` stream.

    Raises:
        ValueError: not such a change.
    """
    if not isinstance(change, dict):
        raise ValueError("a change is a JSON object")
    name = change.get("eventName")
    if name not in ("INSERT", "MODIFY", "REMOVE"):
        raise ValueError("eventName must be INSERT, MODIFY or REMOVE")
    keys = change.get("Keys")
    if not isinstance(keys, dict) or not keys:
        raise ValueError("Keys must be an object of DynamoDB attribute values, such as {\"Id\": {\"N\": \"1\"}}")
    for image in ("NewImage", "OldImage"):
        if image in change and not isinstance(change[image], dict):
            raise ValueError(f"{image} must be an object of DynamoDB attribute values")
    if name == "INSERT" and "NewImage" not in change:
        raise ValueError("an INSERT needs its NewImage")
    if name == "REMOVE" and "OldImage" not in change:
        raise ValueError("a REMOVE needs its OldImage")
    return {k: change[k] for k in ("eventName", "Keys", "NewImage", "OldImage") if k in change}


def dynamodb_partition_key(change: dict) -> str:
    """Changes to one item go to one shard, in order: the key is the item's keys."""
    return json.dumps(change["Keys"], sort_keys=True)


#: Which images a DynamoDB stream's records carry, by its view type.
VIEW_IMAGES = {"KEYS_ONLY": (), "NEW_IMAGE": ("NewImage",), "OLD_IMAGE": ("OldImage",),
               "NEW_AND_OLD_IMAGES": ("NewImage", "OldImage")}


def dynamodb_event_id(arn: str, record: StreamRecord) -> str:
    """A record's 32-hex `eventID`: its own in every table and account (idempotency keyed on it
    drops nothing), and the same each time its batch is retried."""
    return hashlib.md5(f"{arn}/{record.shard}/{record.seq}".encode()).hexdigest()


def dynamodb_record(record: StreamRecord, manifest: Manifest, stream: Stream) -> dict:
    change = json.loads(record.data)
    number = number_of(stream, record.shard, record.seq)
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": int(record.arrived_at),
        "Keys": change["Keys"],
        "SequenceNumber": number,
        "SizeBytes": len(record.data),
        "StreamViewType": stream.view_type,
    }
    for image in VIEW_IMAGES[stream.view_type]:
        if image in change:
            body[image] = change[image]
    return {
        "eventID": dynamodb_event_id(stream_arn(manifest, stream), record),
        "eventName": change["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": manifest.region,
        "dynamodb": body,
        "eventSourceARN": stream_arn(manifest, stream),
    }


def stream_event(records: list[StreamRecord], manifest: Manifest, stream: Stream) -> bytes:
    build = dynamodb_record if stream.format == "dynamodb" else kinesis_record
    return json.dumps({"Records": [build(r, manifest, stream) for r in records]}).encode()


def first_failure(response: bytes, batch: list[StreamRecord], stream: Stream) -> StreamRecord | None:
    """The record a partial batch response says to resume from (the lowest failed sequence number),
    or None for full success; judged as for SQS.

    Raises:
        BatchFailure: the whole batch failed (not JSON; an identifier empty or not in the batch).
    """
    if not response.strip():
        return None
    try:
        doc = json.loads(response)
    except ValueError:
        raise BatchFailure("the response is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("batchItemFailures") is None:
        return None
    entries = doc["batchItemFailures"]
    if not isinstance(entries, list):
        raise BatchFailure("batchItemFailures must be a list")
    by_number = {number_of(stream, r.shard, r.seq): r for r in batch}
    failed = []
    for entry in entries:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or ident not in by_number:
            raise BatchFailure(f"itemIdentifier {ident!r} is not the sequence number of a record in the batch")
        failed.append(by_number[ident])
    return min(failed, key=lambda r: r.seq) if failed else None


def on_failure_record(
    manifest: Manifest, stream: Stream, function: str, records: list[StreamRecord], condition: str,
    invocations: int, now: float, *, function_error: bool = True, payload: bytes | None = None,
) -> bytes:
    """What the on-failure destination receives: metadata about the discarded records (and, for an S3
    destination, the invocation's `payload` too). `function_error`: the last attempt raised, rather
    than reporting item failures."""
    doc: dict[str, Any] = {
        "requestContext": {"requestId": new_request_id(), "functionArn": manifest.function_arn(function),
                           "condition": condition, "approximateInvokeCount": invocations},
        "version": "1.0",
        "timestamp": iso_millis(now),
    }
    if condition == "RetryAttemptsExhausted":
        doc["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            doc["responseContext"]["functionError"] = "Unhandled"
    info = {
        "shardId": shard_name(stream, records[0].shard),
        "startSequenceNumber": number_of(stream, records[0].shard, records[0].seq),
        "endSequenceNumber": number_of(stream, records[-1].shard, records[-1].seq),
        "approximateArrivalOfFirstRecord": iso_millis(records[0].arrived_at),
        "approximateArrivalOfLastRecord": iso_millis(records[-1].arrived_at),
        "batchSize": len(records),
        "streamArn": stream_arn(manifest, stream),
    }
    doc["DDBStreamBatchInfo" if stream.format == "dynamodb" else "KinesisBatchInfo"] = info
    if payload is not None:
        doc["payload"] = payload.decode()
    return json.dumps(doc).encode()
