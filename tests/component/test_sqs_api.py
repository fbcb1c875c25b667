"""The SQS API in-process over a real store: every field of a send checked before anything is
committed, typed parameters, and one error mapper (internal failures and a full disk included)."""

from __future__ import annotations

import base64
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from lambdad.manifest.model import Queue
from lambdad.services import sqs_rules
from lambdad.sqs_vocabulary import new_receipt
from lambdad.store import queues
from tests.component.protocol_apis import ACCOUNT, FIFO_URL, HOST, URL, Apis


@pytest.fixture
def apis(tmp_path: Path):
    a = Apis(tmp_path)
    yield a
    a.close()


def refused(apis: Apis, operation: str, request: object, code: str, status: int = 400) -> str:
    """The request got SQS's error document `code` (as botocore reads it), and nothing was stored."""
    got, headers, doc = apis.call_sqs(operation, request)
    assert (got, doc["__type"]) == (status, f"com.amazonaws.sqs#{code}"), doc
    assert headers["x-amzn-query-error"].endswith(";Sender" if status < 500 else ";Receiver")
    assert apis.rows("messages") == 0
    return doc["message"]


def attribute(value: dict) -> dict:
    return {"QueueUrl": URL, "MessageBody": "b", "MessageAttributes": {"A": value}}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"DataType": "Binary", "BinaryValue": "not base64!"}, "not base64"),
        ({"DataType": 7, "StringValue": "x"}, "invalid message attribute type"),
        ({"DataType": "String", "StringValue": ["x"]}, "not a string"),
        ({"DataType": ["String"], "StringValue": "x"}, "invalid message attribute type"),
        ({"DataType": "String"}, "must contain non-empty message attribute value"),
        ({"DataType": "String", "StringValue": ""}, "must contain non-empty message attribute value"),
        ({"StringValue": "x"}, "non-empty message attribute type"),
        ({"DataType": "string", "StringValue": "x"}, "the set of supported type prefixes is Binary, Number, and String"),
        ({"DataType": "Text", "StringValue": "x"}, "supported type prefixes"),
        ({"DataType": "String", "BinaryValue": "eA=="}, "with type 'String' must use field 'String'"),
        ({"DataType": "Binary", "StringValue": "x"}, "with type 'Binary' must use field 'Binary'"),
        ({"DataType": "Number", "StringValue": "abc"}, "to a number"),
        ({"DataType": "Number", "StringValue": "1" * 39}, "to a number"),
        ({"DataType": "Number", "StringValue": "1e126"}, "to a number"),
        ({"DataType": "Number.int", "StringValue": "١"}, "to a number"),  # (an Arabic-Indic digit)
        ({"DataType": "String", "StringValue": "a\x00b"}, "invalid binary character '#x0'"),
        ("text", "must be an object"),
    ],
)
def test_a_poison_attribute_is_refused_and_nothing_is_committed(apis: Apis, value, reason):
    assert reason in refused(apis, "SendMessage", attribute(value), "InvalidParameterValue")


@pytest.mark.parametrize(
    "value",
    [{"DataType": "Number", "StringValue": "-12.50"}, {"DataType": "Number.float", "StringValue": "1e-10"},
     {"DataType": "Number", "StringValue": "0"}, {"DataType": "Number", "StringValue": "9" * 38},
     {"DataType": "String.json", "StringValue": "{}"}, {"DataType": "Binary.gz", "BinaryValue": "AAE="},
     {"DataType": "String", "StringValue": "tab\tand emoji \U0001F600"}],
)
def test_valid_attributes_are_taken(apis: Apis, value):
    status, _, doc = apis.call_sqs("SendMessage", attribute(value))
    assert status == 200 and doc["MD5OfMessageAttributes"], doc
    status, _, got = apis.call_sqs("ReceiveMessage", {"QueueUrl": URL, "MessageAttributeNames": ["All"]})
    assert got["Messages"][0]["MessageAttributes"] == {"A": value}
    assert got["Messages"][0]["MD5OfMessageAttributes"] == doc["MD5OfMessageAttributes"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [("a", True), ("a.b-c_D9", True), ("x" * 256, True), ("x" * 257, False), (".a", False), ("a.", False),
     ("a..b", False), ("AWS.x", False), ("aws.x", False), ("Amazon.x", False), ("amazonx", True), ("a b", False),
     ("é", False), ("", False)],
)
def test_attribute_names_follow_sqs_rules(apis: Apis, name, ok):
    request = {"QueueUrl": URL, "MessageBody": "b", "MessageAttributes": {name: {"DataType": "String",
                                                                                 "StringValue": "v"}}}
    if ok:
        assert apis.call_sqs("SendMessage", request)[0] == 200
    else:
        assert "attribute name" in refused(apis, "SendMessage", request, "InvalidParameterValue")


def test_at_most_ten_attributes(apis: Apis):
    attrs = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    message = refused(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": "b", "MessageAttributes": attrs},
                      "InvalidParameterValue")
    assert message == "Number of message attributes [11] exceeds the allowed maximum [10]."


@pytest.mark.parametrize(
    ("body", "code"),
    [({"a": 1}, "InvalidParameterValue"), (12, "InvalidParameterValue"), (["x"], "InvalidParameterValue"),
     (True, "InvalidParameterValue"), (None, "MissingParameter"), ("", "MissingParameter"),
     ("a\x00", "InvalidMessageContents"), ("\x0b", "InvalidMessageContents"), ("\ufffe", "InvalidMessageContents"),
     ("\ud800", "InvalidMessageContents")],
)
def test_a_body_sqs_refuses_is_not_stored(apis: Apis, body, code):
    refused(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": body}, code)


def test_the_size_limit_counts_the_attributes(apis: Apis):
    attrs = {"A": {"DataType": "String", "StringValue": "v" * 100}}
    body = "x" * (1024 * 1024 - 100)
    assert "shorter than 1048576" in refused(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": body,
                                                                   "MessageAttributes": attrs},
                                             "InvalidParameterValue")
    assert apis.call_sqs("SendMessage", {"QueueUrl": URL, "MessageBody": body})[0] == 200


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": "abc"}, "InvalidParameterValue"),
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": 1.5}, "InvalidParameterValue"),
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": []}, "InvalidParameterValue"),
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": 901}, "InvalidParameterValue"),
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": -1}, "InvalidParameterValue"),
        ({"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": True}, "InvalidParameterValue"),
        ({"QueueUrl": ["x"], "MessageBody": "b"}, "InvalidParameterValue"),
        ({"QueueUrl": {"a": 1}, "MessageBody": "b"}, "InvalidParameterValue"),
        ({"MessageBody": "b"}, "MissingParameter"),
        ({"QueueUrl": URL, "MessageBody": "b", "MessageDeduplicationId": "d"}, "InvalidParameterValue"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageDeduplicationId": "d"}, "MissingParameter"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g"}, "InvalidParameterValue"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "a b"},
         "InvalidParameterValue"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g" * 129, "MessageDeduplicationId": "d"},
         "InvalidParameterValue"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": 5, "MessageDeduplicationId": "d"},
         "InvalidParameterValue"),
        ({"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "d",
          "DelaySeconds": 5}, "InvalidParameterValue"),
    ],
)
def test_send_parameters_are_typed(apis: Apis, request_, code):
    refused(apis, "SendMessage", request_, code)


def test_fifo_ids_take_punctuation(apis: Apis):
    status, _, doc = apis.call_sqs("SendMessage", {"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g!#~",
                                                   "MessageDeduplicationId": "d:{1}"})
    assert status == 200 and doc["SequenceNumber"]


def test_receive_numbers_fifo_messages_as_sqs_does(apis: Apis):
    sent = [apis.call_sqs("SendMessage", {"QueueUrl": FIFO_URL, "MessageBody": f"m{i}", "MessageGroupId": "g",
                                          "MessageDeduplicationId": str(i)})[2]["SequenceNumber"] for i in range(3)]
    assert all(len(n) == 20 for n in sent) and sent == sorted(sent, key=int) and len(set(sent)) == 3
    _, _, got = apis.call_sqs("ReceiveMessage", {"QueueUrl": FIFO_URL, "MaxNumberOfMessages": 10,
                                                 "MessageSystemAttributeNames": ["SequenceNumber"]})
    assert [m["Attributes"] for m in got["Messages"]] == [{"SequenceNumber": n} for n in sent]


@pytest.mark.parametrize(
    ("names", "shown"),
    [(["All"], True), (["DeadLetterQueueSourceArn"], True), (["SenderId"], False), ([], False)],
)
def test_a_message_moved_by_the_redrive_policy_names_its_source_queue(apis: Apis, names, shown):
    queues_ = apis.sqs.manifest.queues
    queues_["src"] = Queue("src", redrive_dead_letter_queue="dead", redrive_max_receive_count=1)
    queues_["dead"] = Queue("dead")
    src, dead = f"http://{HOST}/{ACCOUNT}/src", f"http://{HOST}/{ACCOUNT}/dead"
    apis.call_sqs("SendMessage", {"QueueUrl": src, "MessageBody": "poison"})
    assert apis.call_sqs("ReceiveMessage", {"QueueUrl": src, "VisibilityTimeout": 0})[2]["Messages"]
    assert apis.call_sqs("ReceiveMessage", {"QueueUrl": src})[2] == {}  # the second receive moves it
    _, _, got = apis.call_sqs("ReceiveMessage", {"QueueUrl": dead, "MessageSystemAttributeNames": names})
    (message,) = got["Messages"]
    arn = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:src"
    assert (message.get("Attributes", {}).get("DeadLetterQueueSourceArn") == arn) is shown


@pytest.mark.parametrize(
    ("operation", "request_", "code"),
    [
        ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": "abc"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": []}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": 11}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "WaitTimeSeconds": "abc"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "WaitTimeSeconds": {}}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "VisibilityTimeout": "abc"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "VisibilityTimeout": 43201}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "AttributeNames": "All"}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": URL, "MessageAttributeNames": [1]}, "InvalidParameterValue"),
        ("ReceiveMessage", {"QueueUrl": 5}, "InvalidParameterValue"),
        ("GetQueueUrl", {"QueueName": ["jobs"]}, "InvalidParameterValue"),
        ("GetQueueUrl", {"QueueName": {"a": 1}}, "InvalidParameterValue"),
        ("GetQueueUrl", {}, "MissingParameter"),
        ("CreateQueue", {"QueueName": 3}, "InvalidParameterValue"),
        ("CreateQueue", {"QueueName": "jobs", "Attributes": []}, "InvalidParameterValue"),
        ("CreateQueue", {"QueueName": "jobs", "Attributes": {"VisibilityTimeout": 30}}, "InvalidParameterValue"),
        ("ListQueues", {"QueueNamePrefix": 1}, "InvalidParameterValue"),
        ("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": ["r"]}, "InvalidParameterValue"),
        ("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "\udc80"}, "InvalidParameterValue"),
        ("ChangeMessageVisibility", {"QueueUrl": URL, "ReceiptHandle": new_receipt(), "VisibilityTimeout": "0"},
         "InvalidParameterValue"),
        ("ChangeMessageVisibility", {"QueueUrl": URL, "ReceiptHandle": new_receipt()}, "MissingParameter"),
        ("GetQueueAttributes", {"QueueUrl": URL, "AttributeNames": {"All": 1}}, "InvalidParameterValue"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": 5}, "InvalidParameterValue"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [5]}, "InvalidParameterValue"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": []}, "EmptyBatchRequest"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": ["a"], "MessageBody": "b"}]},
         "InvalidParameterValue"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"MessageBody": "b"}]}, "MissingParameter"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a.b", "MessageBody": "b"}]}, "InvalidBatchEntryId"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "b"}] * 2},
         "BatchEntryIdsNotDistinct"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": str(i), "MessageBody": "b"} for i in range(11)]},
         "TooManyEntriesInBatchRequest"),
        ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": str(i), "MessageBody": "x" * 300_000}
                                                          for i in range(4)]}, "BatchRequestTooLong"),
        ("DeleteMessageBatch", {"QueueUrl": URL, "Entries": {"Id": "a"}}, "InvalidParameterValue"),
        ("SendMessage", b"[1, 2]", "InvalidParameterValue"),
        ("SendMessage", b"\xff\xfe", "InvalidParameterValue"),
        ("SendMessage", b"[" * 100_000, "InvalidParameterValue"),
        ("Nope", {}, "UnsupportedOperation"),
    ],
)
def test_wrong_types_get_sqs_errors(apis: Apis, operation, request_, code):
    refused(apis, operation, request_, code)


def test_a_bad_batch_entry_fails_alone(apis: Apis):
    status, _, doc = apis.call_sqs("SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "poison", "MessageBody": "b", "MessageAttributes": {"A": {"DataType": "Binary", "BinaryValue": "%"}}},
        {"Id": "object", "MessageBody": {"a": 1}},
        {"Id": "late", "MessageBody": "b", "DelaySeconds": "soon"},
    ]})
    assert status == 200 and [e["Id"] for e in doc["Successful"]] == ["ok"]
    assert {e["Id"]: e["Code"] for e in doc["Failed"]} == {"poison": "InvalidParameterValue",
                                                           "object": "InvalidParameterValue",
                                                           "late": "InvalidParameterValue"}
    assert apis.rows("messages") == 1


def test_delete_batch_entries_with_bad_receipts_fail_alone(apis: Apis):
    stale = new_receipt()  # the shape of a real handle, but none holds it (any more)
    status, _, doc = apis.call_sqs("DeleteMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "a", "ReceiptHandle": ["r"]}, {"Id": "b", "ReceiptHandle": "r"}, {"Id": "c", "ReceiptHandle": stale}]})
    assert status == 200 and doc["Successful"] == [{"Id": "c"}]
    assert {e["Id"]: e["Code"] for e in doc["Failed"]} == {"a": "ReceiptHandleIsInvalid", "b": "ReceiptHandleIsInvalid"}


@pytest.mark.parametrize("operation", ["DeleteMessage", "ChangeMessageVisibility"])
def test_a_handle_never_issued_is_invalid_and_a_stale_one_is_not(apis: Apis, operation: str):
    """As SQS answers: `fake` was never a receipt handle; a handle from an earlier receive was."""
    extra = {"VisibilityTimeout": 5} if operation == "ChangeMessageVisibility" else {}
    message = refused(apis, operation, {"QueueUrl": URL, "ReceiptHandle": "fake", **extra}, "ReceiptHandleIsInvalid")
    assert message == 'The input receipt handle "fake" is not a valid receipt handle.'
    assert apis.call_sqs("SendMessage", {"QueueUrl": URL, "MessageBody": "b"})[0] == 200
    first = apis.call_sqs("ReceiveMessage", {"QueueUrl": URL, "VisibilityTimeout": 0})[2]["Messages"][0]
    second = apis.call_sqs("ReceiveMessage", {"QueueUrl": URL})[2]["Messages"][0]
    assert first["MessageId"] == second["MessageId"]
    if operation == "DeleteMessage":  # the stale handle is accepted and deletes nothing
        assert apis.call_sqs(operation, {"QueueUrl": URL, "ReceiptHandle": first["ReceiptHandle"]})[0] == 200
        assert apis.rows("messages") == 1
        assert apis.call_sqs(operation, {"QueueUrl": URL, "ReceiptHandle": second["ReceiptHandle"]})[0] == 200
        assert apis.rows("messages") == 0


def test_a_full_disk_is_a_service_error_and_commits_nothing(apis: Apis, caplog):
    with apis.store.transaction() as tx:  # the file may not grow: the next big write fails as on a full disk
        pages = tx.execute("PRAGMA page_count").fetchone()[0]
        tx.execute(f"PRAGMA max_page_count = {pages}")
    message = refused(apis, "SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "a", "MessageBody": "fits"}, {"Id": "b", "MessageBody": "x" * 200_000}]}, "ServiceUnavailable", 503)
    assert "database or disk is full" in message
    assert not any(r.exc_info for r in caplog.records)
    assert apis.call_sqs("SendMessage", {"QueueUrl": URL, "MessageBody": "small"})[0] == 200  # the store goes on


def test_an_unexpected_failure_is_an_internal_error_logged_once(apis: Apis, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sqs_rules, "receive", broken)
    with caplog.at_level(logging.ERROR):
        refused(apis, "ReceiveMessage", {"QueueUrl": URL}, "InternalFailure", 500)
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]


def test_a_store_error_other_than_a_full_disk_is_a_service_error_too(apis: Apis, monkeypatch):
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(queues, "purge", locked)
    refused(apis, "PurgeQueue", {"QueueUrl": URL}, "ServiceUnavailable", 503)


def test_a_message_from_an_older_store_is_received_without_its_bad_attribute(apis: Apis):
    with apis.store.transaction() as tx:
        sqs_rules.send(tx, "jobs", b"old", time.time() - 1, {"Bad": {"DataType": "Binary", "BinaryValue": "%%"},
                                                    "Good": {"DataType": "String", "StringValue": "v"}})
    status, _, doc = apis.call_sqs("ReceiveMessage", {"QueueUrl": URL, "MessageAttributeNames": ["All"]})
    assert status == 200 and doc["Messages"][0]["MessageAttributes"] == {"Good": {"DataType": "String",
                                                                                  "StringValue": "v"}}


def test_binary_values_round_trip(apis: Apis):
    raw = bytes(range(256))
    value = {"DataType": "Binary", "BinaryValue": base64.b64encode(raw).decode()}
    assert apis.call_sqs("SendMessage", attribute(value))[0] == 200
    got = apis.call_sqs("ReceiveMessage", {"QueueUrl": URL, "MessageAttributeNames": ["A"]})[2]
    assert base64.b64decode(got["Messages"][0]["MessageAttributes"]["A"]["BinaryValue"]) == raw


def test_list_queues_pages_with_max_results_and_next_token(apis: Apis):
    everything = apis.call_sqs("ListQueues", {})[2]["QueueUrls"]
    assert len(everything) >= 2
    pages, token = [], None
    while True:
        status, _, doc = apis.call_sqs("ListQueues", {"MaxResults": 1, **({"NextToken": token} if token else {})})
        assert status == 200
        pages.append(doc["QueueUrls"])
        token = doc.get("NextToken")
        if token is None:
            break
    assert pages == [[url] for url in everything]
    refused(apis, "ListQueues", {"MaxResults": 1, "NextToken": "not-a-token"}, "InvalidParameterValue")
    refused(apis, "ListQueues", {"MaxResults": 0}, "InvalidParameterValue")
