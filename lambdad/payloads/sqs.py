"""What Lambda's SQS event source mapping sends a function, and how it reads the answer.

Pure functions: the poller (lambdad/triggers/mappings/sqs.py) does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any

from lambdad.payloads.sqs_messages import deliverable_attributes
from lambdad.sqs_vocabulary import TRACE_HEADER, Message


def queue_arn(region: str, account: str, queue: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{queue}"


def record_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Message attributes as Lambda's records spell them (lower camel case, list fields present)."""
    out = {}
    for name, attr in attributes.items():
        value: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attr.get("DataType")}
        if "StringValue" in attr:
            value["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            value["binaryValue"] = attr["BinaryValue"]
        out[name] = value
    return out


def md5_of_attributes(attributes: dict[str, Any]) -> str | None:
    """SQS's MD5OfMessageAttributes: each attribute by name, as length-prefixed name, data type,
    transport type (1 string, 2 binary) and length-prefixed value. None when there are none."""
    if not attributes:
        return None
    digest = hashlib.md5()

    def field(data: bytes) -> None:
        digest.update(struct.pack("!I", len(data)) + data)

    for name in sorted(attributes):
        attr = attributes[name]
        field(name.encode())
        field(attr["DataType"].encode())
        if "BinaryValue" in attr:
            raw = attr["BinaryValue"]
            digest.update(b"\x02")
            field(raw if isinstance(raw, bytes) else base64.b64decode(raw))
        else:
            digest.update(b"\x01")
            field(str(attr.get("StringValue", "")).encode())
    return digest.hexdigest()


def md5_of_system_attributes(trace_header: str | None) -> str | None:
    """MD5OfMessageSystemAttributes: the same digest as message attributes', over the system
    attributes sent (only AWSTraceHeader exists)."""
    if trace_header is None:
        return None
    return md5_of_attributes({TRACE_HEADER: {"DataType": "String", "StringValue": trace_header}})


def sqs_record(message: Message, arn: str, region: str) -> dict:
    """One record of the `{"Records": [...]}` event, exactly as Lambda builds it (with only the
    message attributes SQS would have taken: see `deliverable_attributes`)."""
    attributes = deliverable_attributes(message.attributes)[0]
    try:
        body = message.body.decode()
    except UnicodeDecodeError:
        body = message.body.decode("latin-1")
    record = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt,
        "body": body,
        "attributes": message.system_attributes(),
        "messageAttributes": record_attributes(attributes),
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    md5 = md5_of_attributes(attributes)
    if md5:
        record["md5OfMessageAttributes"] = md5
    return record


def sqs_event(messages: list[Message], arn: str, region: str) -> bytes:
    return json.dumps({"Records": [sqs_record(m, arn, region) for m in messages]}, ensure_ascii=False).encode()


class BatchFailure(ValueError):
    """The whole batch failed (the function raised, or its partial batch response is not valid)."""


def failed_items(response: bytes, batch: list[Message], fifo: bool) -> list[Message]:
    """Which messages of a batch go back to the queue, from a function's partial batch response.

    An empty or null response, or an empty or null `batchItemFailures`, is full success. On a FIFO
    queue a failed message keeps back the rest of its group in the batch (their order must hold).

    Raises:
        BatchFailure: the response is not JSON, or names an item that is empty or not in the batch.
    """
    if not response.strip():
        return []
    try:
        doc = json.loads(response)
    except ValueError:
        raise BatchFailure("the response is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("batchItemFailures") is None:
        return []
    entries = doc["batchItemFailures"]
    if not isinstance(entries, list):
        raise BatchFailure("batchItemFailures must be a list")
    by_id = {m.message_id: m for m in batch}
    failed: set[str] = set()
    for entry in entries:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or not ident or ident not in by_id:
            raise BatchFailure(f"itemIdentifier {ident!r} is not the id of a message in the batch")
        failed.add(ident)
    if fifo:
        held: set[str] = set()  # groups with an earlier failure in this batch
        for m in batch:
            if m.message_id in failed:
                held.add(m.group_id or "")
            elif (m.group_id or "") in held:
                failed.add(m.message_id)
    return [m for m in batch if m.message_id in failed]
