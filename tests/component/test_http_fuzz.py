"""Fuzzed requests against every HTTP face, in-process, with the scopes uvicorn builds: the Lambda REST
API (with SQS and Kinesis on its port), an ALB listener, API Gateway routes (payload 2.0 and 1.0) and a
function URL. Whatever the request, the answer is never a 5xx that is not a deliberate service answer,
and nothing is logged as an error (no traceback)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdad.manifest.model import AlbTrigger, ApiTrigger, Function, Manifest, Queue, Stream
from lambdad.runtime.invocation import Outcome
from tests.component.asgi import ApiWorld, call, listener_world

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

PATH_CHARS = string.ascii_letters + string.digits + "-._~:@!$&'()*+,;=%/"
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]) | st.text(
    string.ascii_uppercase, min_size=1, max_size=8)
WEIRD = ["", "%", "%ff", "%zz", "%2F", "%00", "..", "f", "f:$LATEST", "f:live", "f:", ":f", "f:1:2:3",
         "arn:aws:lambda:eu-west-1:111122223333:function:f", "arn:aws:lambda:eu-west-1:111122223333:function:f:x:y",
         "111122223333:function:f", "invocations", "configuration", "%E2%9C%93", "%C0%AF", "a" * 300]
SEGMENT = st.sampled_from(WEIRD) | st.text(PATH_CHARS, max_size=20)
HEADER_VALUE = st.binary(max_size=120).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00").strip(b" \t"))
QUERY = st.binary(max_size=80).map(lambda b: bytes(c for c in b if c not in b" #\r\n\x00")) | st.lists(
    st.tuples(st.sampled_from(["Qualifier", "Marker", "MaxItems", "x"]) | st.text(PATH_CHARS, max_size=8),
              st.sampled_from(["", "0", "1", "50", "9" * 4300, "%ff", "%", "$LATEST", "-1", "²", "1e3"])
              | st.text(PATH_CHARS, max_size=12)),
    max_size=4).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode())
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
BODY = (st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode())
        | st.integers(1, 100_000).map(lambda n: b"[" * n) | st.integers(1, 5_000).map(lambda n: b"[" * n + b"]" * n))
CLIENT_CONTEXT = st.sampled_from(["", "not base64!", "e30=", "W10=", base64.b64encode(b"[" * 3000).decode()]) | \
    JSON.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode())


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


HEADERS = st.lists(st.one_of(
    st.tuples(st.just("x-amz-invocation-type"), st.sampled_from(["Event", "RequestResponse", "DryRun", "", "x"])),
    st.tuples(st.just("x-amz-log-type"), st.sampled_from(["Tail", "None", "x"])),
    st.tuples(st.just("x-amz-client-context"), CLIENT_CONTEXT),
    st.tuples(st.just("amz-sdk-invocation-id"), st.sampled_from(["a", "b", ""]) | st.text(max_size=40)),
    st.tuples(st.just("content-type"), st.sampled_from(["application/json", "text/plain", "application/x-amz-json-1.0"])),
    st.tuples(st.just("x-amz-target"), st.sampled_from(
        ["AmazonSQS.SendMessage", "AmazonSQS.GetQueueUrl", "AmazonSQS.ReceiveMessage", "AmazonSQS.ListQueues",
         "AmazonSQS.Nope", "Kinesis_20131202.PutRecord", "Kinesis_20131202.ListShards", "Kinesis_20131202.",
         "AmazonSQS."])),
    st.tuples(st.just("host"), st.sampled_from(["127.0.0.1:9001", "localhost", "evil.example", "[::1]", "x:y:z", ""])),
    st.tuples(st.just("origin"), st.sampled_from(["http://evil.example", "null", ""])),
    st.tuples(st.just("content-length"), st.sampled_from(["0", "5", "99999999999999999999999", "-1", "x"])),
    st.tuples(st.text(string.ascii_lowercase + "-", min_size=1, max_size=12), HEADER_VALUE),
    st.tuples(st.just("x-weird"), HEADER_VALUE),
).map(lambda kv: (_encode(kv[0]), _encode(kv[1]))), max_size=6)


def target(path: str, query: bytes) -> bytes:
    return path.encode() + (b"?" + query if query else b"")


def answer(app, method: str, path: str, query: bytes, headers, body: bytes):
    """One request, with the body split in two (as a client may send it)."""
    return asyncio.run(call(app, method, target(path, query), headers, chunks=[body[:7], body[7:]]))


def no_errors_logged(caplog) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, errors[0].getMessage()


# -- the Lambda REST API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    folder = tmp_path_factory.mktemp("fuzz-api")
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    (folder / "lambdad.yaml").write_text("version: 1\n")
    manifest = Manifest(folder / "lambdad.yaml", region="eu-west-1", account="111122223333",
                        functions={"f": Function("f", "app.handler", folder, "python3")},
                        queues={"q": Queue("q")}, streams={"s": Stream("s")})
    world = ApiWorld(folder, manifest)
    yield world
    world.close()


API_PATHS = st.lists(SEGMENT, max_size=3).map(lambda s: "/2015-03-31/functions" + "".join("/" + x for x in s)) | \
    st.text(PATH_CHARS, max_size=30).map(lambda t: "/" + t)


@FUZZ
@given(method=METHODS, path=API_PATHS, query=QUERY, headers=HEADERS, body=BODY)
def test_the_lambda_api_never_fails_on_a_request(api_world: ApiWorld, caplog, method, path, query, headers, body):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reply = answer(api_world.api, method, path, query, headers, body)
    assert reply.sent and reply.status < 500, (reply.status, reply.body[:300])
    if reply.status >= 400:
        assert reply.header("x-amzn-ErrorType") or "__type" in reply.json()
    no_errors_logged(caplog)


# (SQS's and Kinesis's own parameters are theirs to check: here, what reaches them and how it is framed.)


@FUZZ
@given(operation=st.sampled_from(["SendMessage", "GetQueueUrl", "ReceiveMessage", "DeleteMessage", "ListQueues",
                                  "GetQueueAttributes", "Nope"]), body=BODY, headers=HEADERS)
def test_sqs_on_the_api_port_never_fails_on_a_request(api_world: ApiWorld, caplog, operation, body, headers):
    caplog.clear()
    headers = [(k, v) for k, v in headers if k not in (b"x-amz-target", b"content-length")]
    with caplog.at_level(logging.WARNING):
        reply = answer(api_world.api, "POST", "/", b"", [(b"x-amz-target", f"AmazonSQS.{operation}".encode()),
                                                          *headers], body)
    assert reply.status < 500, (reply.status, reply.body[:300])
    no_errors_logged(caplog)


@FUZZ
@given(operation=st.sampled_from(["PutRecord", "PutRecords", "ListShards", "DescribeStream", "GetShardIterator",
                                  "Nope"]), body=BODY, headers=HEADERS)
def test_kinesis_on_the_api_port_never_fails_on_a_request(api_world: ApiWorld, caplog, operation, body, headers):
    caplog.clear()
    headers = [(k, v) for k, v in headers if k not in (b"x-amz-target", b"content-length")]
    with caplog.at_level(logging.WARNING):
        reply = answer(api_world.api, "POST", "/", b"", [(b"x-amz-target", f"Kinesis_20131202.{operation}".encode()),
                                                          *headers], body)
    assert reply.status < 500, (reply.status, reply.body[:300])
    no_errors_logged(caplog)


# -- listeners ----------------------------------------------------------------------------------------------

ALB_OK = json.dumps({"statusCode": 200, "isBase64Encoded": False, "headers": {"x": "1"},
                     "multiValueHeaders": {"x": ["1"]}, "body": "ok"}).encode()


@pytest.fixture(scope="module")
def listeners(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("fuzz-listeners")

    def fn(name: str, *triggers) -> Function:
        return Function(name, "app.handler", folder, "python3", events=triggers)

    manifest = Manifest(folder / "lambdad.yaml", functions={
        "web": fn("web", AlbTrigger("alb", "/*", multi_value_headers=False), AlbTrigger("multi", "/*",
                                                                                       multi_value_headers=True)),
        "items": fn("items", ApiTrigger("http", "GET /items/{id}"), ApiTrigger("http", "ANY /files/{path+}"),
                    ApiTrigger("v1", "ANY /{proxy+}", payload_format="1.0")),
        "url": fn("url", ApiTrigger("url-url", function_url=True)),
    })
    return {name: listener_world(folder, manifest, name, lambda req: (Outcome.success, ALB_OK))[0]
            for name in ("alb", "multi", "http", "v1", "url-url")}


LISTENER_PATHS = st.lists(SEGMENT, max_size=4).map(lambda s: "/" + "/".join(s)) | st.sampled_from(
    ["/items/%ff", "/items/", "/files/a%2Fb/%00", "/", "//", "/items/a/"])


@FUZZ
@given(listener=st.sampled_from(["alb", "multi", "http", "v1", "url-url"]), method=METHODS, path=LISTENER_PATHS,
       query=QUERY, headers=HEADERS, body=BODY)
def test_listeners_never_fail_on_a_request(listeners: dict, caplog, listener, method, path, query, headers, body):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reply = answer(listeners[listener], method, path, query, headers, body)
    assert reply.sent and reply.status < 500, (listener, reply.status, reply.body[:300])
    no_errors_logged(caplog)
