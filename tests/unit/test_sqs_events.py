"""SQS records and partial batch responses: pure, table-driven."""

from __future__ import annotations

import hashlib

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from lambdad import sqs_vocabulary
from lambdad.payloads.sqs import BatchFailure, failed_items, md5_of_attributes, sqs_event, sqs_record
from lambdad.sqs_vocabulary import Message

ARN = "arn:aws:sqs:us-east-1:123456789012:MyQueue"


def message(mid: str = "m1", group: str | None = None, attributes=None) -> Message:
    return Message(mid, "MyQueue", b"Hello from SQS!", attributes or {}, 1523232000.0, 1, 1523232000.001,
                   group, "d1" if group else None, 7 if group else None, "receipt-1")


def test_a_standard_record_matches_the_reference_shape():
    record = sqs_record(message(), ARN, "us-east-1")
    assert record == {
        "messageId": "m1", "receiptHandle": "receipt-1", "body": "Hello from SQS!",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1523232000000",
                       "SenderId": "AIDALAMBDADLOCAL", "ApproximateFirstReceiveTimestamp": "1523232000001"},
        "messageAttributes": {}, "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
        "eventSource": "aws:sqs", "eventSourceARN": ARN, "awsRegion": "us-east-1",
    }


def test_fifo_records_and_message_attributes():
    attrs = {"Kind": {"DataType": "String", "StringValue": "order"}, "N": {"DataType": "Number", "StringValue": "3"}}
    record = sqs_record(message(group="g", attributes=attrs), ARN + ".fifo", "us-east-1")
    assert record["attributes"]["MessageGroupId"] == "g" and record["attributes"]["SequenceNumber"] == sqs_vocabulary.sequence_number(7)
    assert record["attributes"]["MessageDeduplicationId"] == "d1"
    assert record["messageAttributes"]["Kind"] == {"stringValue": "order", "stringListValues": [],
                                                   "binaryListValues": [], "dataType": "String"}
    assert record["md5OfMessageAttributes"] == md5_of_attributes(attrs)
    import json
    SqsModel(**json.loads(sqs_event([message(group="g", attributes=attrs)], ARN, "us-east-1")))


@pytest.mark.parametrize(("counter", "shown"), [
    (1, "18849496460467761664"),
    (2, "18849496460467827200"),
    (10**12, "18915032460467696128"),
])
def test_fifo_sequence_numbers_have_sqs_shape(counter, shown):
    assert sqs_vocabulary.sequence_number(counter) == shown and len(shown) == 20


def test_sequence_numbers_grow_as_numbers_and_as_text():
    numbers = [sqs_vocabulary.sequence_number(n) for n in (1, 2, 9, 10, 99, 100, 10**9, 10**14)]
    assert numbers == sorted(numbers) == sorted(numbers, key=int) and {len(n) for n in numbers} == {20}


def test_a_redriven_record_carries_its_source_queue_arn():
    system = {"DeadLetterQueueSourceArn": ARN, "Other": "ignored here"}
    m = Message("m1", "dlq", b"x", {}, 1523232000.0, 1, None, receipt="r", system=system)
    record = sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:dlq", "us-east-1")
    assert record["attributes"]["DeadLetterQueueSourceArn"] == ARN and "Other" not in record["attributes"]
    import json
    parsed = SqsModel(**json.loads(sqs_event([m], ARN, "us-east-1")))
    assert parsed.Records[0].attributes.DeadLetterQueueSourceArn == ARN


def test_md5_of_message_attributes_follows_sqs_encoding():
    attrs = {"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}, "a": {"DataType": "String", "StringValue": "x"}}
    expected = hashlib.md5(
        b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x06String" + b"\x01" + b"\x00\x00\x00\x01x"
        + b"\x00\x00\x00\x01b" + b"\x00\x00\x00\x06Binary" + b"\x02" + b"\x00\x00\x00\x02\x00\x01"
    ).hexdigest()
    assert md5_of_attributes(attrs) == expected and md5_of_attributes({}) is None


BATCH = [message("m1", "a"), message("m2", "a"), message("m3", "b")]


@pytest.mark.parametrize(
    ("response", "fifo", "failed"),
    [
        (b"", False, []),
        (b"null", False, []),
        (b'"done"', False, []),
        (b'{"batchItemFailures": []}', False, []),
        (b'{"batchItemFailures": null}', False, []),
        (b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}', False, ["m2"]),
        (b'{"batchItemFailures": [{"itemIdentifier": "m1"}]}', True, ["m1", "m2"]),  # m2 waits behind m1
        (b'{"batchItemFailures": [{"itemIdentifier": "m3"}]}', True, ["m3"]),
    ],
)
def test_what_returns_to_the_queue(response, fifo, failed):
    assert [m.message_id for m in failed_items(response, BATCH, fifo)] == failed


@pytest.mark.parametrize(
    "response",
    [b"{not json", b'{"batchItemFailures": {"itemIdentifier": "m1"}}', b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
     b'{"batchItemFailures": [{"itemIdentifier": null}]}', b'{"batchItemFailures": [{"itemIdentifier": "m9"}]}',
     b'{"batchItemFailures": [{"messageId": "m1"}]}', b'{"batchItemFailures": ["m1"]}'],
)
def test_responses_lambda_treats_as_a_whole_batch_failure(response):
    with pytest.raises(BatchFailure):
        failed_items(response, BATCH, False)
