"""Invocation records and dead-letter messages, field by field as AWS writes them."""

import json

from lambdad.payloads.destinations import (
    Condition,
    dead_letter_attributes,
    invocation_record,
    message_file,
    object_key,
)

T = 1_573_755_365.568  # 2019-11-14T18:16:05.568Z
ARN = "arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST"
ERROR = b'{"errorMessage": "intentional failure", "errorType": "Exception", "requestId": "r", "stackTrace": []}'


def test_failure_record_matches_the_aws_example():
    record = invocation_record(
        request_id="r", function_arn=ARN, condition=Condition.retries_exhausted, invoke_count=3,
        request_payload=b'{"ORDER_IDS": ["9e07af03"]}', response_payload=ERROR, function_error="Unhandled", now=T,
    )
    assert record == {
        "version": "1.0",
        "timestamp": "2019-11-14T18:16:05.568Z",
        "requestContext": {"requestId": "r", "functionArn": ARN, "condition": "RetriesExhausted",
                           "approximateInvokeCount": 3},
        "requestPayload": {"ORDER_IDS": ["9e07af03"]},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": json.loads(ERROR),
    }
    assert list(record) == ["version", "timestamp", "requestContext", "requestPayload", "responseContext",
                            "responsePayload"]


def test_success_record_has_no_function_error():
    record = invocation_record(
        request_id="r", function_arn=ARN, condition=Condition.success, invoke_count=1,
        request_payload=b'{"queueId": 10}', response_payload=b'{"statusCode": 200}', function_error=None, now=T,
    )
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == {"statusCode": 200}


def test_a_function_that_never_ran_has_no_response():
    record = invocation_record(
        request_id="r", function_arn=ARN, condition=Condition.zero_reserved_concurrency, invoke_count=0,
        request_payload=b"{}", response_payload=None, function_error="Unhandled", now=T,
    )
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record


def test_non_json_responses_are_kept_as_text():
    record = invocation_record(
        request_id="r", function_arn=ARN, condition=Condition.success, invoke_count=1, request_payload=b"{}",
        response_payload=b"raw-bytes", function_error=None, now=T,
    )
    assert record["responsePayload"] == "raw-bytes"


def test_dead_letter_attributes():
    assert dead_letter_attributes("r", "200", "Test exception (this is intentional)") == {
        "RequestID": {"DataType": "String", "StringValue": "r"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "Test exception (this is intentional)"},
    }


def test_error_message_is_cut_at_1_kb_without_breaking_characters():
    long = "é" * 600  # 1200 bytes
    value = dead_letter_attributes("r", "200", long)["ErrorMessage"]["StringValue"]
    assert len(value.encode()) <= 1024 and value == "é" * 512


def test_message_file_and_object_key():
    doc = json.loads(message_file(b'{"raise_error": 1}', {"A": {"DataType": "String", "StringValue": "x"}}))
    assert doc == {"Body": {"raise_error": 1}, "MessageAttributes": {"A": {"DataType": "String", "StringValue": "x"}}}
    assert object_key("fn", T, "u-1") == "aws/lambda/async/fn/2019/11/14/2019-11-14T18.16.05-u-1"
