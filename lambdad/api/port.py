"""One API port, several AWS protocols: which one a request speaks, the service app that answers
it, and the error document each protocol reads.

Lambda's rest-json is the port's own (`/2015-03-31/functions/...`); SQS (JSON, and the older query
protocol) and Kinesis are told apart by `X-Amz-Target` or a form body. A new AWS API on the port
adds its protocol here: how to recognise it, where it goes, how its errors look.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lambdad.api import sqs_query
from lambdad.api.lambda_shapes import PREFIX, error_response
from lambdad.api.params import Response, shown
from lambdad.errors import LambdadError
from lambdad.http.asgi import Receive, Scope, header, read_body
from lambdad.ids import new_request_id

if TYPE_CHECKING:
    from lambdad.api.kinesis import KinesisApi
    from lambdad.api.sqs_json import SqsApi

LAMBDA, SQS, SQS_QUERY, KINESIS = "lambda", "sqs", "sqs-query", "kinesis"
#: A SendMessageBatch of ten 1 MiB messages (or a PutRecords of 5 MiB), with room for the JSON around them.
SQS_MAX_REQUEST = 12 * 1024 * 1024
_SQS_TARGET, _KINESIS_TARGET = "AmazonSQS.", "Kinesis_20131202."

#: The error codes of the JSON protocols (SQS, Kinesis) for the errors raised around their dispatch.
_JSON_CODES = {
    SQS: {"AccessDeniedException": "AccessDenied", "ServiceException": "InternalFailure",
          "RequestEntityTooLargeException": "RequestEntityTooLarge",
          "InvalidRequestContentException": "InvalidParameterValue"},
    KINESIS: {"ServiceException": "InternalFailure", "RequestEntityTooLargeException": "ValidationException",
              "InvalidRequestContentException": "SerializationException"},
}


def protocol_of(scope: Scope, sqs: SqsApi | None, kinesis: KinesisApi | None) -> str:
    """The protocol a request speaks, among those the port serves (Lambda's when nothing else fits)."""
    target = header(scope, b"x-amz-target") or ""
    if scope["method"] == "POST" and target.startswith(_SQS_TARGET) and sqs is not None:
        return SQS
    if scope["method"] == "POST" and target.startswith(_KINESIS_TARGET) and kinesis is not None:
        return KINESIS
    form = (header(scope, b"content-type") or "").startswith("application/x-www-form-urlencoded")
    if scope["method"] == "POST" and not target and form and not scope["path"].startswith(PREFIX) \
            and sqs is not None:  # (curl sends an Invoke's body as a form unless told otherwise)
        return SQS_QUERY  # SQS's older protocol (the AWS CLI v2 before 2.13 sends it)
    return LAMBDA


async def serve(protocol: str, scope: Scope, receive: Receive, sqs: SqsApi | None,
                kinesis: KinesisApi | None) -> Response:
    """A request of another protocol than Lambda's, answered by its service app."""
    target = header(scope, b"x-amz-target") or ""
    body = await read_body(scope, receive, SQS_MAX_REQUEST)
    if protocol == SQS and sqs is not None:
        return await sqs.handle(target.removeprefix(_SQS_TARGET), body, header(scope, b"host") or "",
                                header(scope, b"x-amzn-trace-id"))
    if protocol == SQS_QUERY and sqs is not None:
        return await _sqs_query(sqs, body, header(scope, b"host") or "", header(scope, b"x-amzn-trace-id"))
    assert protocol == KINESIS and kinesis is not None, protocol
    return await kinesis.handle(target.removeprefix(_KINESIS_TARGET), body)


async def _sqs_query(sqs: SqsApi, body: bytes, host: str, trace_header: str | None) -> Response:
    """A query-protocol request, answered by the SQS JSON operations and translated both ways."""
    request_id = new_request_id()
    try:
        action, doc = sqs_query.parse_form(body)
    except sqs_query.QueryError as e:
        return _query_error(400, "MalformedQueryString", str(e), request_id)
    if not action:
        return _query_error(400, "MissingAction", "The request is missing an action or a required parameter.",
                            request_id)
    code = sqs_query.unknown_action(action)
    if code is not None:
        return _query_error(400, code, f"The action {shown(action)} is not valid for this endpoint.", request_id)
    answer = await sqs.handle(action, json.dumps(doc).encode(), host, trace_header)
    return sqs_query.xml_response(action, *answer, request_id)


def _query_error(status: int, code: str, message: str, request_id: str) -> Response:
    return status, [("content-type", "text/xml"), ("x-amzn-RequestId", request_id)], \
        sqs_query.error_document(code, message, request_id)


def protocol_error(protocol: str, error: LambdadError) -> Response:
    """`error` in the shape the client's protocol reads: Lambda's rest-json, SQS's or Kinesis's JSON."""
    if protocol == LAMBDA:
        return error_response(error)
    if protocol == SQS_QUERY:
        return sqs_query.xml_response(None, *protocol_error(SQS, error), new_request_id())
    code = _JSON_CODES[protocol].get(error.CODE, error.CODE)
    if protocol == SQS:
        body = {"__type": f"com.amazonaws.sqs#{code}", "message": str(error)}
        fault = "Receiver" if error.STATUS >= 500 else "Sender"
        headers = [("content-type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{code};{fault}")]
    else:
        body = {"__type": code, "message": str(error)}
        headers = [("content-type", "application/x-amz-json-1.1")]
    return error.STATUS, headers, json.dumps(body).encode()


def internal_failure() -> LambdadError:
    return LambdadError("An internal error occurred in lambdad; its console shows what went wrong.")
