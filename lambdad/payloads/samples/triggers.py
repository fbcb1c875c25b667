"""Samples of the sources lambdad triggers itself (S3, schedules, ALB, API Gateway, SQS, Kinesis,
DynamoDB Streams), built by the very builders those triggers use: a sample is the shape the daemon sends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdad.ids import new_request_id
from lambdad.payloads.s3 import s3_event, s3_record, sequencer_after
from lambdad.payloads.samples.registry import (
    ACCOUNT,
    REGION,
    Params,
    SampleError,
    bool_param,
    choice_param,
    int_param,
    json_value,
    sample,
    time_param,
)
from lambdad.payloads.scheduled import scheduled_event
from lambdad.tracing import root_header

if TYPE_CHECKING:
    from lambdad.manifest.model import Manifest
    from lambdad.store.streams import StreamRecord

#: The `configurationId` of sample S3 notifications (a bucket trigger's would name its function).
S3_CONFIGURATION_ID = "lambdad-sample"


def _manifest() -> Manifest:
    """The smallest manifest the stream builders accept: it only lends them a region and an account."""
    from lambdad.manifest.model import Manifest

    return Manifest(file=Path("lambdad.yaml"), region=REGION, account=ACCOUNT)

# --- sources lambdad triggers: built by the triggers' own builders ---------------------------------


def _s3(params: Params, now: float, event_name: str, **obj: Any) -> dict[str, Any]:
    return s3_event(s3_record(
        event_name=event_name, bucket=params["bucket"], key=params["key"], region=REGION, now=now,
        configuration_id=S3_CONFIGURATION_ID, sequencer=sequencer_after(None, int(now * 1e9)), **obj,
    ))


@sample("s3-put", "S3 ObjectCreated:Put notification (one record, as S3 sends)",
        bucket=("uploads", "bucket name"), key=("images/cat.jpg", "object key (sent form-encoded, as S3 does)"),
        size=("1024", "object size in bytes"), etag=("", "object ETag (default: a random MD5 in hex)"))
def _s3_put(params: Params, now: float) -> dict[str, Any]:
    return _s3(params, now, "ObjectCreated:Put", size=int_param(params, "size"),
               etag=params["etag"] or os.urandom(16).hex())


@sample("s3-delete", "S3 ObjectRemoved:Delete notification (no size, no eTag, as S3 sends)",
        bucket=("uploads", "bucket name"), key=("images/cat.jpg", "object key (sent form-encoded, as S3 does)"))
def _s3_delete(params: Params, now: float) -> dict[str, Any]:
    return _s3(params, now, "ObjectRemoved:Delete")


@sample("schedule", "EventBridge Scheduled Event, as a schedule rule delivers it",
        rule=("sample-rule", "rule name (in the resources ARN)"),
        time=("", "scheduled time, ISO-8601 (default: now)"))
def _schedule(params: Params, now: float) -> dict[str, Any]:
    return scheduled_event(event_id=new_request_id(), region=REGION, account=ACCOUNT, rule=params["rule"],
                           scheduled_at=time_param(params, "time", now))


@sample("alb", "Application Load Balancer request to a Lambda target",
        method=("GET", "HTTP method"), path=("/", "request path"), query=("", "raw query string, e.g. a=1&b=2"),
        body=("", "request body (text)"),
        multi_value=("false", "true: multiValueHeaders and multiValueQueryStringParameters, as a target "
                              "with multi_value_headers: true gets"))
def _alb(params: Params, now: float) -> dict[str, Any]:
    from lambdad.payloads.alb import alb_event, target_group_arn

    return alb_event(
        target_group_arn=target_group_arn(_manifest(), "web", "sample"), method=params["method"].upper(),
        path=params["path"], query=params["query"].lstrip("?"), headers=_alb_headers(params["body"], now),
        body=params["body"].encode(), multi_value=bool_param(params, "multi_value"),
    )


def _alb_headers(body: str, now: float) -> list[tuple[str, str]]:
    """A curl request's headers, then the ones ALB adds (as lambdad's listener does)."""
    headers = [("host", "localhost"), ("user-agent", "curl/8.5.0"), ("accept", "*/*")]
    if body:
        kind = "application/json" if isinstance(json_value(body), dict | list) else "text/plain"
        headers += [("content-type", kind), ("content-length", str(len(body.encode())))]
    return [*headers, ("x-amzn-trace-id", root_header(now)), ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-port", "80"), ("x-forwarded-proto", "http")]


def _api_request(params: Params) -> Any:
    from lambdad.payloads.apigateway import Request

    path, _, query = params["path"].partition("?")
    headers = [("host", "localhost"), ("user-agent", "curl/8.5.0"), ("accept", "*/*")]
    if params["body"]:
        kind = "application/json" if isinstance(json_value(params["body"]), dict | list) else "text/plain"
        headers.append(("content-type", kind))
    return Request(method=params["method"].upper(), raw_path=path or "/", raw_query=query, headers=tuple(headers),
                   body=params["body"].encode(), source_ip="127.0.0.1")


def _api_route(params: Params, path: str) -> tuple[str, str, dict[str, str]]:
    """The route key, the resource and the path parameters, matched as a listener matches them."""
    from lambdad.route_keys import RouteError, parse_route

    try:
        route = parse_route(params["route"])
    except RouteError as e:
        raise SampleError(str(e)) from None
    found = route.match(params["method"].upper(), path)
    if found is None:
        raise SampleError(f"route {route.key!r} does not take {params['method'].upper()} {path}")
    return route.key, route.path or route.key, found


def _api(version: str, params: Params, now: float) -> dict[str, Any]:
    from lambdad.payloads.apigateway import Api, BadPath, http_api_path, v1_event, v2_event

    request = _api_request(params)
    try:  # the path each routes on: a REST API's as sent, an HTTP API's decoded
        path = request.raw_path if version == "1.0" else http_api_path(request.raw_path)
    except BadPath as e:
        raise SampleError(f"an HTTP API refuses this path (400): {e}") from None
    key, resource, path_parameters = _api_route(params, path)
    api = Api(account=ACCOUNT, api_id=secrets.token_hex(5), domain="localhost", request_id=str(uuid.uuid4()),
              now=now)
    if version == "1.0":
        return v1_event(request, api, resource, path_parameters)
    return v2_event(request, api, key, path_parameters)


_API_PARAMS: dict[str, tuple[str, str]] = {
    "method": ("GET", "HTTP method"), "path": ("/items/42", "request path, with ?query if any"),
    "route": ("ANY /{proxy+}", "the route that takes it: 'GET /items/{id}', 'ANY /{proxy+}' or '$default'"),
    "body": ("", "request body (text)"),
}
sample("apigateway-v2", "API Gateway HTTP API request, payload format 2.0 (also function URLs)",
       **_API_PARAMS)(partial(_api, "2.0"))
sample("apigateway-v1", "API Gateway REST API proxy request, payload format 1.0", **_API_PARAMS)(partial(_api, "1.0"))


@sample("sqs", "SQS event source mapping batch of one message",
        queue=("sample-queue", "queue name (a .fifo name gives a FIFO message)"), body=("Hello from SQS!", "body"),
        group=("default", "MessageGroupId (FIFO queues only)"))
def _sqs(params: Params, now: float) -> dict[str, Any]:
    from lambdad.payloads.sqs import queue_arn, sqs_event
    from lambdad.sqs_vocabulary import Message

    name, body = params["queue"], params["body"].encode()
    fifo = name.endswith(".fifo")
    message = Message(
        message_id=new_request_id(), queue=name, body=body, attributes={}, sent_at=now, receive_count=1,
        first_receive_at=now, group_id=params["group"] if fifo else None,
        dedup_id=hashlib.sha256(body).hexdigest() if fifo else None,
        sequence=secrets.randbelow(10**18) if fifo else None, receipt=base64.b64encode(os.urandom(24)).decode(),
    )
    return json.loads(sqs_event([message], queue_arn(REGION, ACCOUNT, name), REGION))


def _stream_record(stream: str, partition_key: str, data: bytes, now: float) -> StreamRecord:
    """A record as the store would hold it; a random sequence number keeps eventIDs fresh."""
    from lambdad.store.streams import StreamRecord
    from lambdad.stream_vocabulary import SMALL_HASH_SPACE, key_hash

    return StreamRecord(stream, 0, secrets.randbelow(10**12) + 1, partition_key,
                        key_hash(partition_key) % SMALL_HASH_SPACE, data, now)


@sample("kinesis", "Kinesis Data Streams batch of one record",
        stream=("sample-stream", "stream name"), data=("Hello, this is a test 123.", "record data (text; sent base64)"),
        partition_key=("partitionKey-03", "partition key"))
def _kinesis(params: Params, now: float) -> dict[str, Any]:
    from lambdad.manifest.model import Stream
    from lambdad.payloads.streams import stream_event

    stream = Stream(params["stream"])
    record = _stream_record(stream.name, params["partition_key"], params["data"].encode(), now)
    return json.loads(stream_event([record], _manifest(), stream))


@sample("dynamodb", "DynamoDB Streams batch of one change record",
        table=("ExampleTableWithStream", "table name"), event_name=("INSERT", "INSERT, MODIFY or REMOVE"),
        keys=('{"Id": {"N": "101"}}', "the item's keys, as DynamoDB JSON"))
def _dynamodb(params: Params, now: float) -> dict[str, Any]:
    from lambdad.manifest.model import Stream
    from lambdad.payloads.streams import change_record, dynamodb_partition_key, stream_event

    keys = json_value(params["keys"])
    try:
        change = change_record(_change(choice_param(params, "event_name", ("INSERT", "MODIFY", "REMOVE")), keys))
    except ValueError as e:
        raise SampleError(f"--set keys: {e}") from None
    stream = Stream(params["table"], format="dynamodb")
    record = _stream_record(stream.name, dynamodb_partition_key(change), json.dumps(change).encode(), now)
    return json.loads(stream_event([record], _manifest(), stream))


def _change(event_name: str, keys: Any) -> dict[str, Any]:
    """The change AWS's own sample shows: an item's message, new, then changed, then removed."""
    if not isinstance(keys, dict):
        return {"eventName": event_name, "Keys": keys}  # change_record says what is wrong with it
    new, changed = {**keys, "Message": {"S": "New item!"}}, {**keys, "Message": {"S": "This item has changed"}}
    images = {"INSERT": {"NewImage": new}, "MODIFY": {"NewImage": changed, "OldImage": new},
              "REMOVE": {"OldImage": changed}}
    return {"eventName": event_name, "Keys": keys, **images[event_name]}


