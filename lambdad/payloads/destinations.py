"""What Lambda delivers after an asynchronous invocation: invocation records (destinations) and
dead-letter messages, field by field as AWS writes them.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from lambdad.clock import iso_millis, utc

#: Lambda sends the first kilobyte of the error message as the ErrorMessage attribute.
ERROR_MESSAGE_MAX_BYTES = 1024


class Condition(enum.StrEnum):
    success = "Success"
    retries_exhausted = "RetriesExhausted"
    event_age_exceeded = "EventAgeExceeded"
    zero_reserved_concurrency = "ZeroReservedConcurrency"
    recursive_loop = "RecursiveInvocationException"  #: stopped as a recursive loop (AWS names no condition)


def _json_or_text(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: Condition,
    invoke_count: int,
    request_payload: bytes,
    response_payload: bytes | None,
    function_error: str | None,
    now: float,
) -> dict[str, Any]:
    """The record sent to on_success / on_failure destinations.

    `function_arn` is qualified (`...:function:NAME:$LATEST`). When the function never ran
    (`invoke_count` 0: zero reserved concurrency, or an event that expired while waiting), there is
    no `responseContext` and no `responsePayload`. A success has no `functionError` key.
    """
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_millis(now),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition.value,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if invoke_count > 0:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            context["functionError"] = function_error
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(response_payload)
    return record


def dead_letter_attributes(request_id: str, error_code: str, error_message: str) -> dict[str, dict[str, str]]:
    """SQS message attributes of a dead-letter message: RequestID, ErrorCode (a Number), ErrorMessage."""
    message = error_message.encode()[:ERROR_MESSAGE_MAX_BYTES].decode("utf-8", "ignore")
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": error_code},
        "ErrorMessage": {"DataType": "String", "StringValue": message},
    }


def message_file(body: bytes, attributes: dict[str, Any]) -> bytes:
    """A dead-letter message as one file: the SQS message shape, the body parsed when it is JSON."""
    return json.dumps({"Body": _json_or_text(body), "MessageAttributes": attributes}, indent=2).encode() + b"\n"


def object_key(function: str, now: float, unique: str) -> str:
    """Where Lambda puts an async record in an S3 destination:
    `aws/lambda/async/FUNCTION/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-UUID`."""
    t = utc(now)
    return f"aws/lambda/async/{function}/{t:%Y/%m/%d}/{t:%Y-%m-%dT%H.%M.%S}-{unique}"
