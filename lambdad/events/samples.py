"""Sample events for `lambdad event generate`: what each AWS source sends a function, ready to edit.

Sources lambdad also triggers (S3, schedules, ALB, SQS, Kinesis, DynamoDB Streams) are built by the
very builders those triggers use, so a sample is byte for byte the shape the daemon sends. The rest
(CloudFront, Cognito, Lex, Alexa, Firehose, Step Functions, S3 Batch Operations) are shaped after
AWS's own samples and documentation. Every builder takes `now` and draws fresh ids, so two samples
never share a request id, and a handler that deduplicates on ids sees two distinct events.

`SAMPLES` is a plain dict: another module adds a source with one line, `register(Sample(...))`.
Builders that need manifest, store or listener code import it when they run, so that `lambdad event
list` does not pay for loading the manifest schema.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import http
import json
import math
import os
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lambdad.clock import iso_millis
from lambdad.errors import UsageError
from lambdad.events.s3 import s3_event, s3_record, sequencer_after
from lambdad.events.scheduled import scheduled_event
from lambdad.runtime.invocation import new_request_id

if TYPE_CHECKING:
    from lambdad.manifest.model import Manifest
    from lambdad.store.streams import StreamRecord

#: Where samples say they happen: the manifest's defaults (lambdad.manifest.model), spelled out here so
#: that listing samples loads no manifest code.
REGION = "us-east-1"
ACCOUNT = "123456789012"
#: The `configurationId` of sample S3 notifications (a bucket trigger's would name its function).
S3_CONFIGURATION_ID = "lambdad-sample"

Params = Mapping[str, str]
Builder = Callable[[Params, float], dict[str, Any]]


class SampleError(UsageError):
    """A sample cannot be made as asked: unknown source, bad `--set`, bad parameter value."""


@dataclass(frozen=True)
class Param:
    default: str
    help: str


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    params: Mapping[str, Param]
    build: Builder  #: (params with every default filled in, now) -> payload

    def defaults(self) -> dict[str, str]:
        return {name: p.default for name, p in self.params.items()}


#: Every source `lambdad event list` shows, by name.
SAMPLES: dict[str, Sample] = {}


def register(sample: Sample) -> Sample:
    """Add a source; a second one of the same name is a programming error, not a silent override."""
    if sample.name in SAMPLES:
        raise ValueError(f"sample {sample.name!r} is already registered")
    SAMPLES[sample.name] = sample
    return sample


def sample(name: str, description: str, **params: tuple[str, str]) -> Callable[[Builder], Builder]:
    """Register the decorated builder; each keyword is a parameter: `name=(default, help)`."""

    def add(build: Builder) -> Builder:
        register(Sample(name, description, {k: Param(*v) for k, v in params.items()}, build))
        return build

    return add


# --- generating, and --set -----------------------------------------------------------------------


def find(name: str) -> Sample:
    if name in SAMPLES:
        return SAMPLES[name]
    close = difflib.get_close_matches(name, SAMPLES, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "`lambdad event list` shows them all"
    raise SampleError(f"unknown event source {name!r} ({hint})")


def generate(name: str, settings: Sequence[str], now: float) -> dict[str, Any]:
    """The payload of source `name` at time `now`, with each `NAME=VALUE` of `settings` applied.

    A NAME that is one of the source's parameters sets it before the payload is built (so the builder
    derives everything that depends on it, such as an ARN from a queue name); any other NAME is a dotted
    path into the built payload, set afterwards, with VALUE parsed as JSON when it is JSON.

    Raises:
        SampleError: unknown source, a setting without `=`, a bad parameter value or a bad path.
    """
    found = find(name)
    params, paths = found.defaults(), []
    for text in settings:
        key, value = parse_setting(text)
        if key in found.params:
            params[key] = value
        else:
            paths.append((key, value))
    payload = found.build(params, now)
    for path, value in paths:
        set_path(payload, path, json_value(value))
    return payload


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SampleError(f"--set {text!r}: expected NAME=VALUE, a parameter or a dotted path such as "
                          "Records.0.s3.object.size=10")
    return name.strip(), value


def json_value(text: str) -> Any:
    """`10` is a number and `{"a": 1}` an object, but `hello` is the string it reads as. So are `NaN` and
    `1e400`: Python's `json` takes them, but the payload it printed could not be read back."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        return text


def _not_json(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set `a.b.0.c` in `doc`. The last key is created if missing; every step before it must exist,
    so that a typo (`Records.0.s4...`) is an error rather than a new branch nobody reads."""
    parts = path.split(".")
    if not all(parts):
        raise SampleError(f"--set {path}: a path is keys and list indexes joined by single dots")
    node = doc
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, path, ".".join(parts[:depth]))
    _assign(node, parts[-1], value, path, ".".join(parts[:-1]))


def _child(node: Any, part: str, path: str, where: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            close = difflib.get_close_matches(part, list(node), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SampleError(f"--set {path}: {_at(where)} has no key {part!r}{hint}")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, path, where)]
    raise SampleError(f"--set {path}: {_at(where)} is {_kind(node)}, not an object or a list")


def _assign(node: Any, part: str, value: Any, path: str, where: str) -> None:
    if isinstance(node, dict):
        node[part] = value
    elif isinstance(node, list):
        node[_index(node, part, path, where)] = value
    else:
        raise SampleError(f"--set {path}: {_at(where)} is {_kind(node)}, not an object or a list")


def _index(items: list, part: str, path: str, where: str) -> int:
    if not (part.isascii() and part.isdigit()):
        raise SampleError(f"--set {path}: {_at(where)} is a list; {part!r} is not an index")
    if int(part) >= len(items):
        raise SampleError(f"--set {path}: {_at(where)} has {len(items)} item(s); index {part} is out of range")
    return int(part)


def _at(where: str) -> str:
    return where or "the payload"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else "a string"


# --- parameter values ----------------------------------------------------------------------------


def _int(params: Params, name: str, low: int = 0, high: int | None = None) -> int:
    try:
        value = int(params[name].strip())
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SampleError(f"--set {name}: {params[name]!r} is not a whole number {span}")
    return value


def _bool(params: Params, name: str) -> bool:
    text = params[name].strip().lower()
    if text not in ("true", "false"):
        raise SampleError(f"--set {name}: {params[name]!r} is not true or false")
    return text == "true"


def _choice(params: Params, name: str, choices: Sequence[str]) -> str:
    value = params[name].strip().upper()
    if value not in choices:
        raise SampleError(f"--set {name}: {params[name]!r} is not one of {', '.join(choices)}")
    return value


def _time(params: Params, name: str, now: float) -> float:
    """An ISO-8601 time (UTC unless it says otherwise), or `now` when empty."""
    text = params[name].strip()
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SampleError(f"--set {name}: {text!r} is not an ISO-8601 time such as 2024-01-01T12:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _opaque_id(size: int) -> str:
    """An id AWS documents only as an opaque string (S3 Batch invocation and task ids)."""
    return base64.b64encode(os.urandom(size)).decode()


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
    return _s3(params, now, "ObjectCreated:Put", size=_int(params, "size"), etag=params["etag"] or os.urandom(16).hex())


@sample("s3-delete", "S3 ObjectRemoved:Delete notification (no size, no eTag, as S3 sends)",
        bucket=("uploads", "bucket name"), key=("images/cat.jpg", "object key (sent form-encoded, as S3 does)"))
def _s3_delete(params: Params, now: float) -> dict[str, Any]:
    return _s3(params, now, "ObjectRemoved:Delete")


@sample("schedule", "EventBridge Scheduled Event, as a schedule rule delivers it",
        rule=("sample-rule", "rule name (in the resources ARN)"),
        time=("", "scheduled time, ISO-8601 (default: now)"))
def _schedule(params: Params, now: float) -> dict[str, Any]:
    return scheduled_event(event_id=new_request_id(), region=REGION, account=ACCOUNT, rule=params["rule"],
                           scheduled_at=_time(params, "time", now))


@sample("alb", "Application Load Balancer request to a Lambda target",
        method=("GET", "HTTP method"), path=("/", "request path"), query=("", "raw query string, e.g. a=1&b=2"),
        body=("", "request body (text)"),
        multi_value=("false", "true: multiValueHeaders and multiValueQueryStringParameters, as a target "
                              "with multi_value_headers: true gets"))
def _alb(params: Params, now: float) -> dict[str, Any]:
    from lambdad.events.alb import alb_event
    from lambdad.http.listener import target_group_arn

    return alb_event(
        target_group_arn=target_group_arn(_manifest(), "web", "sample"), method=params["method"].upper(),
        path=params["path"], query=params["query"].lstrip("?"), headers=_alb_headers(params["body"], now),
        body=params["body"].encode(), multi_value=_bool(params, "multi_value"),
    )


def _alb_headers(body: str, now: float) -> list[tuple[str, str]]:
    """A curl request's headers, then the ones ALB adds (as lambdad's listener does)."""
    headers = [("host", "localhost"), ("user-agent", "curl/8.5.0"), ("accept", "*/*")]
    if body:
        kind = "application/json" if isinstance(json_value(body), dict | list) else "text/plain"
        headers += [("content-type", kind), ("content-length", str(len(body.encode())))]
    trace = f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"
    return [*headers, ("x-amzn-trace-id", trace), ("x-forwarded-for", "127.0.0.1"), ("x-forwarded-port", "80"),
            ("x-forwarded-proto", "http")]


def _api_request(params: Params) -> Any:
    from lambdad.events.apigateway import Request

    path, _, query = params["path"].partition("?")
    headers = [("host", "localhost"), ("user-agent", "curl/8.5.0"), ("accept", "*/*")]
    if params["body"]:
        kind = "application/json" if isinstance(json_value(params["body"]), dict | list) else "text/plain"
        headers.append(("content-type", kind))
    return Request(method=params["method"].upper(), raw_path=path or "/", raw_query=query, headers=tuple(headers),
                   body=params["body"].encode(), source_ip="127.0.0.1")


def _api_route(params: Params, path: str) -> tuple[str, str, dict[str, str]]:
    """The route key, the resource and the path parameters, matched as a listener matches them."""
    from lambdad.http.routes import RouteError, parse_route

    try:
        route = parse_route(params["route"])
    except RouteError as e:
        raise SampleError(str(e)) from None
    found = route.match(params["method"].upper(), path)
    if found is None:
        raise SampleError(f"route {route.key!r} does not take {params['method'].upper()} {path}")
    return route.key, route.path or route.key, found


def _api(version: str, params: Params, now: float) -> dict[str, Any]:
    from lambdad.events.apigateway import Api, v1_event, v2_event

    request = _api_request(params)
    key, resource, path_parameters = _api_route(params, request.raw_path)
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
    from lambdad.events.sqs import queue_arn, sqs_event
    from lambdad.store.queues import Message

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
    from lambdad.store.streams import StreamRecord, key_hash

    return StreamRecord(stream, 0, secrets.randbelow(10**12) + 1, partition_key, key_hash(partition_key) % 2**62,
                        data, now)


@sample("kinesis", "Kinesis Data Streams batch of one record",
        stream=("sample-stream", "stream name"), data=("Hello, this is a test 123.", "record data (text; sent base64)"),
        partition_key=("partitionKey-03", "partition key"))
def _kinesis(params: Params, now: float) -> dict[str, Any]:
    from lambdad.events.streams import stream_event
    from lambdad.manifest.model import Stream

    stream = Stream(params["stream"])
    record = _stream_record(stream.name, params["partition_key"], params["data"].encode(), now)
    return json.loads(stream_event([record], _manifest(), stream))


@sample("dynamodb", "DynamoDB Streams batch of one change record",
        table=("ExampleTableWithStream", "table name"), event_name=("INSERT", "INSERT, MODIFY or REMOVE"),
        keys=('{"Id": {"N": "101"}}', "the item's keys, as DynamoDB JSON"))
def _dynamodb(params: Params, now: float) -> dict[str, Any]:
    from lambdad.events.streams import change_record, dynamodb_partition_key, stream_event
    from lambdad.manifest.model import Stream

    keys = json_value(params["keys"])
    try:
        change = change_record(_change(_choice(params, "event_name", ("INSERT", "MODIFY", "REMOVE")), keys))
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


# --- CloudFront Lambda@Edge ----------------------------------------------------------------------

#: What CloudFront's documentation uses for the distribution and its origin.
CF_DOMAIN = "d111111abcdef8.cloudfront.net"
CF_ORIGIN = "example.org"
CF_CLIENT_IP = "203.0.113.178"
_CF_PARAMS = {"uri": ("/", "request path"), "method": ("GET", "HTTP method"),
              "querystring": ("", "query string without the ?"),
              "distribution_id": ("EDFDVBD6EXAMPLE", "distribution id")}


def _cf_headers(*pairs: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    """Lambda@Edge's header map: lower-case name -> [{key: the name as sent, value}]."""
    out: dict[str, list[dict[str, str]]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append({"key": name, "value": value})
    return out


def _cf_request(event_type: str, params: Params) -> dict[str, Any]:
    """The viewer's request, or (origin events) the one CloudFront forwards, with the origin it targets."""
    request: dict[str, Any] = {"clientIp": CF_CLIENT_IP}
    if event_type.startswith("viewer"):
        request["headers"] = _cf_headers(("Host", CF_DOMAIN), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*"))
    else:
        via = f"2.0 {os.urandom(16).hex()}.cloudfront.net (CloudFront)"
        request["headers"] = _cf_headers(("X-Forwarded-For", CF_CLIENT_IP), ("User-Agent", "Amazon CloudFront"),
                                         ("Via", via), ("Host", CF_ORIGIN))
    request["method"] = params["method"].upper()
    if not event_type.startswith("viewer"):
        request["origin"] = {"custom": {
            "customHeaders": {}, "domainName": CF_ORIGIN, "keepaliveTimeout": 5, "path": "", "port": 443,
            "protocol": "https", "readTimeout": 30, "sslProtocols": ["TLSv1", "TLSv1.1", "TLSv1.2"],
        }}
    request["querystring"] = params["querystring"].lstrip("?")
    request["uri"] = params["uri"]
    return request


def _cf_response(params: Params, now: float) -> dict[str, Any]:
    status = _int(params, "status", 100, 599)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    headers = _cf_headers(("Content-Type", "text/html; charset=utf-8"), ("Date", formatdate(now, usegmt=True)),
                          ("Server", "ExampleOrigin"))
    return {"headers": headers, "status": str(status), "statusDescription": phrase}


def _cloudfront(event_type: str, params: Params, now: float) -> dict[str, Any]:
    config = {"distributionDomainName": CF_DOMAIN, "distributionId": params["distribution_id"],
              "eventType": event_type, "requestId": base64.urlsafe_b64encode(os.urandom(40)).decode()}
    cf: dict[str, Any] = {"config": config, "request": _cf_request(event_type, params)}
    if event_type.endswith("response"):
        cf["response"] = _cf_response(params, now)
    return {"Records": [{"cf": cf}]}


def _register_cloudfront() -> None:
    for event_type in ("viewer-request", "origin-request", "origin-response", "viewer-response"):
        extra = {"status": ("200", "HTTP status of the response")} if event_type.endswith("response") else {}
        params = {k: Param(*v) for k, v in {**_CF_PARAMS, **extra}.items()}
        register(Sample(f"cloudfront-{event_type}", f"CloudFront Lambda@Edge {event_type} event", params,
                        partial(_cloudfront, event_type)))


_register_cloudfront()


# --- Cognito user pool triggers ------------------------------------------------------------------

_COGNITO_PARAMS = {"user_pool_id": ("us-east-1_EXAMPLE", "user pool id"), "user_name": ("jdoe", "user name"),
                   "email": ("jdoe@example.com", "the user's email attribute"),
                   "client_id": ("1example23456789", "app client id")}
#: The challenge lambdad's custom-auth samples answer (and expect back).
_ANSWER = "5"
_SRP_A = {"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None}


def _user(params: Params, status: str = "CONFIRMED") -> dict[str, str]:
    """A user's attributes as Cognito passes them, with a fresh `sub`."""
    return {"sub": str(uuid.uuid4()), "email_verified": "true" if status == "CONFIRMED" else "false",
            "cognito:user_status": status, "email": params["email"]}


@dataclass(frozen=True)
class CognitoTrigger:
    trigger_source: str
    description: str
    request: Callable[[Params], dict[str, Any]]
    response: Callable[[], dict[str, Any]]


#: Per trigger, what AWS documents in `request` and `response` (nulls where the function fills them in).
COGNITO_TRIGGERS: dict[str, CognitoTrigger] = {
    "pre-signup": CognitoTrigger(
        "PreSignUp_SignUp", "pre sign-up",
        lambda p: {"userAttributes": {"email": p["email"]}, "validationData": {}, "clientMetadata": {}},
        lambda: {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}),
    "pre-authentication": CognitoTrigger(
        "PreAuthentication_Authentication", "pre authentication",
        lambda p: {"userAttributes": _user(p), "validationData": {}, "userNotFound": False}, dict),
    "post-authentication": CognitoTrigger(
        "PostAuthentication_Authentication", "post authentication",
        lambda p: {"userAttributes": _user(p), "newDeviceUsed": False, "clientMetadata": {}}, dict),
    "post-confirmation": CognitoTrigger(
        "PostConfirmation_ConfirmSignUp", "post confirmation",
        lambda p: {"userAttributes": _user(p), "clientMetadata": {}}, dict),
    "pre-token-generation": CognitoTrigger(
        "TokenGeneration_Authentication", "pre token generation, version 1 event",
        lambda p: {"userAttributes": _user(p), "clientMetadata": {},
                   "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": None}},
        lambda: {"claimsOverrideDetails": None}),
    "custom-message": CognitoTrigger(
        "CustomMessage_SignUp", "custom message, sign-up code",
        lambda p: {"userAttributes": _user(p, "UNCONFIRMED"), "codeParameter": "{####}",
                   "linkParameter": "{##Click Here##}", "usernameParameter": None, "clientMetadata": {}},
        lambda: {"smsMessage": None, "emailMessage": None, "emailSubject": None}),
    "define-auth-challenge": CognitoTrigger(
        "DefineAuthChallenge_Authentication", "define auth challenge",
        lambda p: {"userAttributes": _user(p), "session": [_SRP_A], "clientMetadata": {}, "userNotFound": False},
        lambda: {"challengeName": None, "issueTokens": None, "failAuthentication": None}),
    "create-auth-challenge": CognitoTrigger(
        "CreateAuthChallenge_Authentication", "create auth challenge",
        lambda p: {"userAttributes": _user(p), "challengeName": "CUSTOM_CHALLENGE", "session": [_SRP_A],
                   "clientMetadata": {}, "userNotFound": False},
        lambda: {"publicChallengeParameters": None, "privateChallengeParameters": None, "challengeMetadata": None}),
    "verify-auth-challenge": CognitoTrigger(
        "VerifyAuthChallengeResponse_Authentication", "verify auth challenge response",
        lambda p: {"userAttributes": _user(p), "privateChallengeParameters": {"answer": _ANSWER},
                   "challengeAnswer": _ANSWER, "clientMetadata": {}, "userNotFound": False},
        lambda: {"answerCorrect": None}),
    "user-migration": CognitoTrigger(
        "UserMigration_Authentication", "user migration, sign-in",
        lambda p: {"password": "Example-Passw0rd", "validationData": {}, "clientMetadata": {}},
        lambda: {"userAttributes": None, "finalUserStatus": None, "messageAction": None,
                 "desiredDeliveryMediums": None, "forceAliasCreation": None, "enableSMSMFA": None}),
}


def _cognito(trigger: CognitoTrigger, params: Params, now: float) -> dict[str, Any]:
    return {
        "version": "1", "triggerSource": trigger.trigger_source, "region": REGION,
        "userPoolId": params["user_pool_id"], "userName": params["user_name"],
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": params["client_id"]},
        "request": trigger.request(params), "response": trigger.response(),
    }


def _register_cognito() -> None:
    params = {k: Param(*v) for k, v in _COGNITO_PARAMS.items()}
    for name, trigger in COGNITO_TRIGGERS.items():
        description = f"Cognito user pool {trigger.description} ({trigger.trigger_source})"
        register(Sample(f"cognito-{name}", description, params, partial(_cognito, trigger)))


_register_cognito()


# --- other sources, shaped after AWS's samples ---------------------------------------------------


@sample("s3-batch", "S3 Batch Operations task (invocation schema 1.0)",
        bucket=("examplebucket", "bucket name"), key=("test/key", "object key (sent URL-encoded)"),
        version_id=("", "object version id (default: none, as for an unversioned bucket)"))
def _s3_batch(params: Params, now: float) -> dict[str, Any]:
    return {
        "invocationSchemaVersion": "1.0",
        "invocationId": _opaque_id(36),
        "job": {"id": str(uuid.uuid4())},
        "tasks": [{"taskId": _opaque_id(12), "s3Key": quote(params["key"]), "s3VersionId": params["version_id"] or None,
                   "s3BucketArn": f"arn:aws:s3:::{params['bucket']}"}],
    }


#: The reference sample's slots, for its own intent.
_ORDER_FLOWERS_SLOTS = {"FlowerType": "lilies", "PickupDate": "2030-11-08", "PickupTime": "10:00"}


@sample("lex", "Amazon Lex (V1) code hook event",
        bot=("OrderFlowers", "bot name"), intent=("OrderFlowers", "intent name"),
        invocation_source=("DialogCodeHook", "DialogCodeHook or FulfillmentCodeHook"),
        input=("I would like to order some flowers", "what the user said (inputTranscript)"),
        user_id=("John", "the client's user id"))
def _lex(params: Params, now: float) -> dict[str, Any]:
    slots = dict(_ORDER_FLOWERS_SLOTS) if params["intent"] == "OrderFlowers" else {}
    return {
        "messageVersion": "1.0",
        "invocationSource": params["invocation_source"],
        "userId": params["user_id"],
        "sessionAttributes": {},
        "requestAttributes": None,
        "bot": {"name": params["bot"], "alias": "$LATEST", "version": "$LATEST"},
        "outputDialogMode": "Text",
        "currentIntent": {"name": params["intent"], "slots": slots, "confirmationStatus": "None"},
        "inputTranscript": params["input"],
    }


@sample("alexa", "Alexa Skills Kit LaunchRequest (a new session)",
        application_id=("amzn1.ask.skill.987654321", "skill id"), locale=("en-US", "request locale"))
def _alexa(params: Params, now: float) -> dict[str, Any]:
    application = {"applicationId": params["application_id"]}
    user = {"userId": f"amzn1.ask.account.{secrets.token_hex(16).upper()}"}
    return {
        "version": "1.0",
        "session": {"new": True, "sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}", "application": application,
                    "user": user, "attributes": {}},
        "context": {"AudioPlayer": {"playerActivity": "IDLE"},
                    "System": {"application": dict(application), "user": dict(user),
                               "device": {"supportedInterfaces": {"AudioPlayer": {}}}}},
        "request": {"type": "LaunchRequest", "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
                    "timestamp": iso_millis(now)[:19] + "Z", "locale": params["locale"]},
    }


@sample("firehose", "Kinesis Data Firehose data transformation batch of one record",
        stream=("sample-delivery-stream", "delivery stream name"),
        data=("Hello, this is a test 123.", "record data (text; sent base64)"))
def _firehose(params: Params, now: float) -> dict[str, Any]:
    return {
        "invocationId": str(uuid.uuid4()),
        "deliveryStreamArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{params['stream']}",
        "region": REGION,
        "records": [{"recordId": str(secrets.randbelow(10**56)).zfill(56),
                     "approximateArrivalTimestamp": int(now * 1000),
                     "data": base64.b64encode(params["data"].encode()).decode()}],
    }


@sample("stepfunctions", "Step Functions error output, as a Catch passes it to a Lambda task",
        error=("CustomError", "Error name"), cause=("This is the cause of the error.", "Cause text"))
def _stepfunctions(params: Params, now: float) -> dict[str, Any]:
    return {"Error": params["error"], "Cause": params["cause"]}
