"""SQS's errors as its JSON protocol sends them: a `__type` naming the modeled error and the
`x-amzn-query-error` header with the older query-protocol code, so botocore raises the same
exception classes; and SQS's words for a parameter it refuses.
"""

from __future__ import annotations

import json

from lambdad.api.params import shown
from lambdad.errors import ProtocolError
from lambdad.sqs_vocabulary import QueueError

#: Error code -> (modeled error shape, query-protocol code); the status is the error's own.
ERRORS = {
    "QueueDoesNotExist": ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid"),
    "MessageNotInflight": ("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"),
    "EmptyBatchRequest": ("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest"),
    "TooManyEntriesInBatchRequest": ("TooManyEntriesInBatchRequest",
                                     "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
    "BatchEntryIdsNotDistinct": ("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
    "InvalidBatchEntryId": ("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId"),
    "BatchRequestTooLong": ("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"),
    "InvalidMessageContents": ("InvalidMessageContents", "InvalidMessageContents"),
    "MissingParameter": ("MissingParameter", "MissingParameter"),
    "InvalidParameterValue": ("InvalidParameterValue", "InvalidParameterValue"),
    "UnsupportedOperation": ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"),
    "QueueNameExists": ("QueueNameExists", "QueueAlreadyExists"),
    "InternalFailure": ("InternalFailure", "InternalFailure"),
    "ServiceUnavailable": ("ServiceUnavailable", "ServiceUnavailable"),
}


class SqsApiError(QueueError):
    pass


class _Errors:
    """SQS's words for a parameter it refuses."""

    def wrong_type(self, name: str, value: object, expected: str) -> SqsApiError:
        return SqsApiError("InvalidParameterValue", f"Value {shown(value)} for parameter {name} is invalid. "
                                                    f"Reason: must be {expected}.")

    def missing(self, name: str) -> SqsApiError:
        return SqsApiError("MissingParameter", f"The request must contain the parameter {name}.")

    def invalid(self, name: str, value: object, reason: str) -> SqsApiError:
        return SqsApiError("InvalidParameterValue", f"Value {shown(value)} for parameter {name} is invalid. "
                                                    f"Reason: {reason}")


SQS_ERRORS = _Errors()


def error_response(error: ProtocolError) -> tuple[int, list[tuple[str, str]], bytes]:
    shape, query_code = ERRORS.get(error.code, (error.code, error.code))
    fault = "Receiver" if error.status >= 500 else "Sender"
    body = {"__type": f"com.amazonaws.sqs#{shape}", "message": str(error)}
    headers = [("content-type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{query_code};{fault}")]
    return error.status, headers, json.dumps(body).encode()


def invalid_receipt(receipt: object) -> str:
    """SQS's message for a handle it never issued."""
    if not isinstance(receipt, str) or not receipt:
        return "The input receipt handle is invalid."
    return f'The input receipt handle "{shown(receipt, 64)}" is not a valid receipt handle.'
