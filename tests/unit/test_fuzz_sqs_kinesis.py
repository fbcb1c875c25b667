"""Fuzzed requests to the SQS JSON and Kinesis JSON 1.1 APIs, in-process over a real store: whatever
a client sends, the answer is that protocol's document (an error has `__type`), never a 5xx, and
nothing is logged as a failure. Requests are random JSON for every parameter, and well-formed
requests with one parameter replaced by a value of another type."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.component.protocol_apis import ACCOUNT, FIFO_URL, HOST, URL, Apis

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])

#: Strings that break naive code: lone surrogates (JSON may escape them), control and non-characters.
ODD = st.sampled_from(["\ud800", "a\udfff", "\x00", "\x0b", "\ufffe", "AWS.x", "a..b", ".", "", " ", "é", "1e999",
                       "-0", "NaN", "٣", "=", "%%", "eA=="])
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8) \
    | ODD
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | ODD,
                                                                                           inner, max_size=3),
                    max_leaves=8)


def either(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes any JSON at all."""
    return st.one_of(valid, valid, JSON)


def request(required: dict, optional: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries({k: either(v) for k, v in required.items()},
                                 optional={k: either(v) for k, v in optional.items()})


QUEUE_URL = st.sampled_from([URL, FIFO_URL, f"http://{HOST}/{ACCOUNT}/cbd.fifo", f"http://{HOST}/{ACCOUNT}/nope"])
NAME = st.sampled_from(["A", "b.c", "x" * 257, "AWS.k", "k..k", "k-1"]) | ODD
ATTRIBUTE = st.fixed_dictionaries({}, optional={
    "DataType": either(st.sampled_from(["String", "Number", "Binary", "Number.int", "String.x", "Text", "binary"])),
    "StringValue": either(st.sampled_from(["v", "12.5", "-1e3", "1" * 40, ""]) | st.text(max_size=5)),
    "BinaryValue": either(st.sampled_from(["AAE=", "not base64", ""]) | st.binary(max_size=6).map(
        lambda b: base64.b64encode(b).decode())),
    "StringListValues": JSON, "BinaryListValues": JSON})
ATTRIBUTES = st.dictionaries(NAME, either(ATTRIBUTE), max_size=12)
SEND = {"MessageBody": st.text(max_size=20) | ODD, "DelaySeconds": st.integers(-2, 902),
        "MessageAttributes": ATTRIBUTES, "MessageGroupId": st.sampled_from(["g", "g h", "g" * 129]) | ODD,
        "MessageDeduplicationId": st.sampled_from(["d", "d!{}"]) | ODD}
ENTRY_ID = st.sampled_from(["a", "b", "c", "a.b", "x" * 81]) | ODD
SEND_ENTRY = st.fixed_dictionaries({"Id": either(ENTRY_ID)}, optional={k: either(v) for k, v in SEND.items()})
RECEIPT = st.sampled_from(["r", "AAAA"]) | ODD
DELETE_ENTRY = st.fixed_dictionaries({"Id": either(ENTRY_ID)}, optional={"ReceiptHandle": either(RECEIPT)})
NAMES_LIST = st.lists(st.sampled_from(["All", ".*", "SentTimestamp", "A", "b.*"]) | ODD, max_size=3)

SQS_OPERATIONS = {
    "SendMessage": request({"QueueUrl": QUEUE_URL, "MessageBody": SEND["MessageBody"]},
                           {k: v for k, v in SEND.items() if k != "MessageBody"}),
    "SendMessageBatch": request({"QueueUrl": QUEUE_URL, "Entries": st.lists(either(SEND_ENTRY), max_size=11)}, {}),
    "ReceiveMessage": request({"QueueUrl": QUEUE_URL}, {
        "MaxNumberOfMessages": st.integers(-1, 12), "WaitTimeSeconds": st.integers(-3, 25), "VisibilityTimeout": st.integers(-1, 43201),
        "AttributeNames": NAMES_LIST, "MessageAttributeNames": NAMES_LIST, "MessageSystemAttributeNames": NAMES_LIST,
        "ReceiveRequestAttemptId": st.text(max_size=5)}),
    "DeleteMessage": request({"QueueUrl": QUEUE_URL, "ReceiptHandle": RECEIPT}, {}),
    "DeleteMessageBatch": request({"QueueUrl": QUEUE_URL, "Entries": st.lists(either(DELETE_ENTRY), max_size=11)}, {}),
    "ChangeMessageVisibility": request({"QueueUrl": QUEUE_URL, "ReceiptHandle": RECEIPT},
                                       {"VisibilityTimeout": st.integers(-1, 43201)}),
    "GetQueueUrl": request({"QueueName": st.sampled_from(["jobs", "nope"]) | ODD}, {"QueueOwnerAWSAccountId": JSON}),
    "CreateQueue": request({"QueueName": st.sampled_from(["jobs", "jobs.fifo", "new"]) | ODD},
                           {"Attributes": st.dictionaries(st.sampled_from(["VisibilityTimeout", "FifoQueue", "X"]),
                                                          either(st.sampled_from(["30", "true", "0"])))}),
    "ListQueues": request({}, {"QueueNamePrefix": st.sampled_from(["j", ""]) | ODD, "MaxResults": JSON}),
    "PurgeQueue": request({"QueueUrl": QUEUE_URL}, {}),
    "GetQueueAttributes": request({"QueueUrl": QUEUE_URL}, {"AttributeNames": NAMES_LIST}),
}

DATA = st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()) | st.sampled_from(["not base64", "=="]) | ODD
RECORD = st.fixed_dictionaries({"PartitionKey": either(st.text(max_size=4) | ODD), "Data": either(DATA)},
                               optional={"ExplicitHashKey": either(st.sampled_from(["0", str(2**128), "01", "-1"])),
                                         "SequenceNumberForOrdering": either(st.sampled_from(["0", "12", "x"]))})
STREAM = {"StreamName": st.sampled_from(["clicks", "nope", "a b"]) | ODD,
          "StreamARN": st.sampled_from([f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/clicks", "x"]) | ODD}
KINESIS_OPERATIONS = {
    "PutRecord": st.tuples(request({}, STREAM), RECORD).map(lambda t: {**t[0], **t[1]}),
    "PutRecords": request({}, {**STREAM, "Records": st.lists(either(RECORD), max_size=4)}),
    "DescribeStream": request({}, {**STREAM, "Limit": st.integers(-1, 10_001), "ExclusiveStartShardId": JSON}),
    "DescribeStreamSummary": request({}, STREAM),
    "ListShards": request({}, {**STREAM, "MaxResults": st.integers(-1, 10_001), "NextToken": JSON}),
    "ListStreams": request({}, {"Limit": st.integers(-1, 10_001), "ExclusiveStartStreamName": JSON}),
    "CreateStream": request({}, {"StreamName": STREAM["StreamName"], "ShardCount": st.integers(-1, 3)}),
}


@pytest.fixture
def apis(tmp_path):
    a = Apis(tmp_path)
    yield a
    a.close()


def sqs(apis: Apis, operation: str, doc: object) -> tuple[int, dict[str, str], dict]:
    """Call, but never with a real long poll (the queue is often empty: it would wait it out)."""
    if isinstance(doc, dict) and doc.get("WaitTimeSeconds") in range(1, 21):
        doc = {**doc, "WaitTimeSeconds": 0}
    return apis.call_sqs(operation, doc)


def answered_well(answer: tuple[int, dict[str, str], dict], caplog: pytest.LogCaptureFixture) -> None:
    status, headers, doc = answer
    assert status < 500, doc
    assert isinstance(doc, dict) and headers["content-type"] in ("application/x-amz-json-1.0",
                                                                 "application/x-amz-json-1.1")
    if status >= 400:
        assert isinstance(doc.get("__type"), str) and isinstance(doc.get("message"), str), doc
        if headers["content-type"].endswith("1.0"):  # SQS: the query-protocol code too, for botocore
            assert headers["x-amzn-query-error"].endswith(";Sender")
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures[0].getMessage()


def one_wrong(operations: dict) -> st.SearchStrategy:
    """A well-formed request with one parameter replaced by a value of another type."""
    def replace(draw_args):
        operation, doc, other = draw_args
        if doc:
            key = sorted(doc)[len(json.dumps(other)) % len(doc)]
            doc = {**doc, key: other}
        return operation, doc

    return st.sampled_from(sorted(operations)).flatmap(
        lambda op: st.tuples(st.just(op), operations[op], JSON)).map(replace)


@SETTINGS
@given(call=st.sampled_from(sorted(SQS_OPERATIONS)).flatmap(lambda op: st.tuples(st.just(op), SQS_OPERATIONS[op])))
def test_sqs_answers_every_request_with_an_sqs_document(apis, caplog, call):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        answered_well(sqs(apis, *call), caplog)


@SETTINGS
@given(call=one_wrong(SQS_OPERATIONS))
def test_sqs_answers_a_wrongly_typed_parameter_with_an_sqs_error(apis, caplog, call):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        answered_well(sqs(apis, *call), caplog)


@SETTINGS
@given(call=st.sampled_from(sorted(KINESIS_OPERATIONS)).flatmap(
    lambda op: st.tuples(st.just(op), KINESIS_OPERATIONS[op])))
def test_kinesis_answers_every_request_with_a_kinesis_document(apis, caplog, call):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        answered_well(apis.call_kinesis(*call), caplog)


@SETTINGS
@given(call=one_wrong(KINESIS_OPERATIONS))
def test_kinesis_answers_a_wrongly_typed_parameter_with_a_kinesis_error(apis, caplog, call):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        answered_well(apis.call_kinesis(*call), caplog)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(["SendMessage", "ReceiveMessage", "PutRecord", "PutRecords"]),
       body=st.binary(max_size=40) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_body_gets_the_protocols_document(apis, caplog, operation, body):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        if operation.startswith("Put"):
            answered_well(apis.call_kinesis(operation, body), caplog)
        else:
            answered_well(sqs(apis, operation, body), caplog)
