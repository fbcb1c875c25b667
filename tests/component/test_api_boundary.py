"""The API's boundary, in-process: partial bodies run nothing, every failure is an AWS error document,
host names and web pages are checked, and the SDK-retry cache is bounded by bytes."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.manifest.model import Function, Manifest, Queue, Stream
from lambdad.runtime.invocation import Outcome
from tests.component.asgi import ApiWorld, run

INVOKE = "/2015-03-31/functions/f/invocations"
SQS = [("x-amz-target", "AmazonSQS.SendMessage"), ("content-type", "application/x-amz-json-1.0")]
KINESIS = [("x-amz-target", "Kinesis_20131202.PutRecord"), ("content-type", "application/x-amz-json-1.1")]


def make_manifest(tmp_path: Path) -> Manifest:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    (tmp_path / "lambdad.yaml").write_text("version: 1\n")
    return Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account="111122223333",
                    functions={"f": Function("f", "app.handler", tmp_path, "python3", environment={"SECRET": "s"})},
                    queues={"q": Queue("q")}, streams={"s": Stream("s")})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    w = ApiWorld(tmp_path, make_manifest(tmp_path))
    yield w
    w.close()


def messages_in(world: ApiWorld, queue: str = "q") -> int:
    with world.store.reading() as tx:
        return tx.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def records_in(world: ApiWorld) -> int:
    with world.store.reading() as tx:
        return tx.execute("SELECT COUNT(*) FROM stream_records").fetchone()[0]


# -- an aborted upload runs nothing ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RequestResponse", "Event"])
def test_an_aborted_invoke_body_runs_and_stores_nothing(world: ApiWorld, kind: str):
    headers = [("content-length", "500"), ("x-amz-invocation-type", kind)]
    reply = run(world.api, "POST", INVOKE, headers, chunks=[b'{"partial": "body"}'], disconnect=True)
    assert reply.status == 400  # (the client is gone; uvicorn drops the answer)
    assert world.invocations() == 0 and world.queued() == 0


def test_a_body_shorter_than_its_content_length_runs_nothing(world: ApiWorld):
    reply = run(world.api, "POST", INVOKE, [("content-length", "500"), ("x-amz-invocation-type", "Event")],
                body=b'{"partial": "body"}')
    assert reply.status == 400 and reply.header("x-amzn-ErrorType") == "InvalidRequestContentException"
    assert world.queued() == 0


def test_aborted_sqs_and_kinesis_bodies_store_nothing(world: ApiWorld):
    body = json.dumps({"QueueUrl": "http://127.0.0.1:9001/111122223333/q", "MessageBody": "x"}).encode()
    run(world.api, "POST", "/", [*SQS, ("content-length", str(len(body) + 10))], chunks=[body], disconnect=True)
    record = json.dumps({"StreamName": "s", "PartitionKey": "k", "Data": base64.b64encode(b"x").decode()}).encode()
    run(world.api, "POST", "/", [*KINESIS, ("content-length", str(len(record) + 10))], chunks=[record],
        disconnect=True)
    assert messages_in(world) == 0 and records_in(world) == 0
    assert run(world.api, "POST", "/", SQS, body=body).status == 200  # (the same requests, whole, are stored)
    assert run(world.api, "POST", "/", KINESIS, body=record).status == 200
    assert messages_in(world) == 1 and records_in(world) == 1


# -- bad input is the AWS error a client expects, never a 5xx ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "headers", "body", "status", "code"),
    [
        ("POST", INVOKE, [], b"[" * 100_000, 400, "InvalidRequestContentException"),
        ("POST", INVOKE, [("x-amz-invocation-type", "Event")], b"[" * 100_000, 400, "InvalidRequestContentException"),
        ("POST", INVOKE, [("x-amz-client-context", base64.b64encode(b"[" * 2000).decode())], b"{}", 400,
         "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions?Marker=" + "9" * 4300, [], b"", 400, "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions?MaxItems=" + "9" * 4300, [], b"", 400, "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions?MaxItems=%C2%B2", [], b"", 400, "InvalidParameterValueException"),  # '²'
        ("GET", "/2015-03-31/functions?MaxItems=0", [], b"", 400, "InvalidParameterValueException"),
        ("GET", b"/2015-03-31/functions/f?Qualifier=\xff", [], b"", 400, "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions/f?Qualifier=%ff", [], b"", 400, "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions/f?" + "&".join(f"a{i}=1" for i in range(1000)), [], b"", 400,
         "InvalidParameterValueException"),
        ("GET", "/2015-03-31/functions/f:%00:x", [], b"", 404, "ResourceNotFoundException"),
        ("POST", INVOKE, [("content-length", "9" * 30)], b"", 413, "RequestEntityTooLargeException"),
        ("POST", INVOKE, [("content-length", "12x")], b"", 400, "InvalidRequestContentException"),
    ],
)
def test_bad_requests_are_4xx_error_documents(world: ApiWorld, caplog, method, target, headers, body, status, code):
    reply = run(world.api, method, target, headers, body=body)
    assert (reply.status, reply.header("x-amzn-ErrorType")) == (status, code)
    assert reply.json()["Message"] and not caplog.records


def test_list_functions_pages_still_work(world: ApiWorld):
    assert [f["FunctionName"] for f in run(world.api, "GET", "/2015-03-31/functions?MaxItems=1").json()["Functions"]] \
        == ["f"]
    assert run(world.api, "GET", "/2015-03-31/functions?Marker=1").json() == {"Functions": []}


def test_an_unexpected_failure_is_one_logged_traceback_and_a_service_exception(world: ApiWorld, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(world.api, "_get_function", broken)
    with caplog.at_level(logging.ERROR, logger="lambdad.api.lambda_api"):
        reply = run(world.api, "GET", "/2015-03-31/functions/f")
    assert (reply.status, reply.header("x-amzn-ErrorType")) == (500, "ServiceException")
    assert reply.json()["Type"] == "Service" and b"Traceback" not in reply.body
    assert [r.exc_info is not None for r in caplog.records] == [True]


@pytest.mark.parametrize(("headers", "expected"), [
    (SQS, (500, "com.amazonaws.sqs#InternalFailure")), (KINESIS, (500, "InternalFailure"))])
def test_unexpected_failures_in_sqs_and_kinesis_are_their_protocols_documents(world, monkeypatch, headers, expected):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(world.api.sqs, "handle", broken)
    monkeypatch.setattr(world.api.kinesis, "handle", broken)
    reply = run(world.api, "POST", "/", headers, body=b"{}")
    assert (reply.status, reply.json()["__type"]) == expected


def test_a_store_that_cannot_be_written_answers_an_async_invoke_with_a_service_exception(world, monkeypatch, caplog):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(world.store, "write", full)
    reply = run(world.api, "POST", INVOKE, [("x-amz-invocation-type", "Event")], body=b"{}")
    assert (reply.status, reply.header("x-amzn-ErrorType")) == (500, "ServiceException")
    assert "disk is full" in reply.json()["Message"]
    assert [r.getMessage() for r in caplog.records] == ["an event for f could not be stored: database or disk is full"]


# -- DNS rebinding and cross-site requests ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9001", "localhost.evil.example", "127.0.0.1.nip.io",
                                  "", "evil.example:x"])
def test_other_host_names_are_refused(world: ApiWorld, host: str):
    reply = run(world.api, "GET", "/2015-03-31/functions/f", [("host", host)])
    assert (reply.status, reply.header("x-amzn-ErrorType")) == (403, "AccessDeniedException")
    assert b"SECRET" not in reply.body


def test_sqs_does_not_echo_another_host(world: ApiWorld):
    reply = run(world.api, "POST", "/", [("host", "evil.example:9001"), ("x-amz-target", "AmazonSQS.GetQueueUrl")],
                body=b'{"QueueName": "q"}')
    assert reply.status == 403 and reply.json()["__type"] == "com.amazonaws.sqs#AccessDenied"
    assert reply.header("x-amzn-query-error") == "AccessDenied;Sender" and "QueueUrl" not in reply.json()


@pytest.mark.parametrize("host", ["127.0.0.1:9001", "localhost:9001", "LOCALHOST:9001", "localhost.", "[::1]:9001",
                                  "127.0.0.2", "bucket.localhost:9001", "Bucket.LocalHost"])
def test_local_host_names_are_served(world: ApiWorld, host: str):
    assert run(world.api, "GET", "/2015-03-31/functions/f", [("host", host)]).status == 200


@pytest.mark.parametrize("headers", [
    [("origin", "http://evil.example"), ("content-type", "text/plain")],
    [("origin", "null")],
    [("origin", "http://localhost:3000")],  # another port is another origin
    [("sec-fetch-site", "cross-site")],
    [("sec-fetch-site", "same-site")],
])
def test_requests_from_web_pages_run_nothing(world: ApiWorld, headers):
    reply = run(world.api, "POST", INVOKE, headers, body=b"{}")
    assert (reply.status, reply.header("x-amzn-ErrorType")) == (403, "AccessDeniedException")
    assert world.invocations() == 0
    reply = run(world.api, "POST", "/", [*SQS, *headers], body=json.dumps(
        {"QueueUrl": "http://127.0.0.1:9001/111122223333/q", "MessageBody": "x"}).encode())
    assert reply.status == 403 and messages_in(world) == 0


def test_listed_origins_and_the_users_own_navigation_are_served(tmp_path: Path):
    from dataclasses import replace

    from lambdad.manifest.model import ApiEndpoint

    manifest = make_manifest(tmp_path)
    manifest = replace(manifest, api=ApiEndpoint("127.0.0.1", 9001, allow_origins=("http://localhost:3000",)))
    world = ApiWorld(tmp_path, manifest)
    try:
        assert run(world.api, "POST", INVOKE, [("origin", "http://LOCALHOST:3000")], body=b"{}").status == 200
        assert run(world.api, "GET", "/2015-03-31/functions", [("sec-fetch-site", "none")]).status == 200
        assert run(world.api, "POST", INVOKE, [("origin", "http://localhost:3001")], body=b"{}").status == 403
    finally:
        world.close()


def test_preflights_get_an_error_and_no_cors_headers(world: ApiWorld):
    for headers in ([("origin", "http://evil.example"), ("access-control-request-method", "POST")], []):
        reply = run(world.api, "OPTIONS", INVOKE, headers)
        assert reply.status >= 400 and not any(k.lower().startswith("access-control-") for k, _ in reply.headers)


# -- the SDK-retry cache is bounded by bytes ---------------------------------------------------------------


def test_the_retry_cache_keeps_at_most_its_bytes_and_an_evicted_call_runs_again(tmp_path: Path):
    big = b'"' + b"x" * 100_000 + b'"'
    world = ApiWorld(tmp_path, make_manifest(tmp_path), script=lambda req: (Outcome.success, big))
    world.api.dedup_bytes = 350_000
    try:
        for i in range(10):
            reply = run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", f"call-{i}")], body=b"{}")
            assert reply.body == big
            assert 0 < world.api.cached_bytes <= world.api.dedup_bytes
        assert world.invocations() == 10
        run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "call-9")], body=b"{}")  # still kept: same answer
        assert world.invocations() == 10
        run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "call-0")], body=b"{}")  # let go: runs again
        assert world.invocations() == 11 and world.api.cached_bytes <= world.api.dedup_bytes
    finally:
        world.close()


def test_an_answer_larger_than_the_whole_cache_is_not_kept(tmp_path: Path):
    world = ApiWorld(tmp_path, make_manifest(tmp_path))
    world.api.dedup_bytes = 10
    try:
        for _ in range(2):
            run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "same")], body=b'{"k": "more than ten bytes"}')
        assert world.invocations() == 2 and world.api.cached_bytes == 0
    finally:
        world.close()


def test_answers_older_than_15_minutes_are_let_go(world: ApiWorld):
    run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "a")], body=b"{}")
    world.clock.advance(14 * 60)
    run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "a")], body=b"{}")
    assert world.invocations() == 1
    world.clock.advance(2 * 60)
    run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "b")], body=b"{}")
    run(world.api, "POST", INVOKE, [("amz-sdk-invocation-id", "a")], body=b"{}")
    assert world.invocations() == 3


# -- a call signed for another region --------------------------------------------------------------------


def _signed(region: str) -> list[tuple[str, str]]:
    return [("authorization", f"AWS4-HMAC-SHA256 Credential=any/20260101/{region}/lambda/aws4_request, "
                              "SignedHeaders=host;x-amz-date, Signature=00")]


def test_a_call_signed_for_another_region_is_served_with_one_warning(world: ApiWorld):
    warned: list[str] = []
    world.api.regions._warn = warned.append
    for region in ("eu-west-2", "eu-west-2", "eu-west-1", "us-east-1", "eu-west-2"):
        reply = run(world.api, "POST", INVOKE, _signed(region), b'{"a": 1}')
        assert reply.status == 200, reply.body
    sqs = run(world.api, "POST", "/", SQS + _signed("eu-west-2"), json.dumps({
        "QueueUrl": "http://127.0.0.1:9001/111122223333/q", "MessageBody": "m"}).encode())
    assert sqs.status == 200, sqs.body
    assert len(warned) == 2 and "eu-west-2" in warned[0] and "us-east-1" in warned[1]  # once per region
    assert "manifest's region eu-west-1" in warned[0] and "ARNs in its answers say eu-west-1" in warned[0]
    context = run(world.api, "GET", "/2015-03-31/functions/f", _signed("eu-west-2"))
    assert json.loads(context.body)["Configuration"]["FunctionArn"].startswith("arn:aws:lambda:eu-west-1:")


@pytest.mark.parametrize(
    ("authorization", "credential", "region"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-2/lambda/aws4_request, SignedHeaders=host, "
         "Signature=ab", None, "eu-west-2"),
        ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sqs/aws4_request,SignedHeaders=host,Signature=ab",
         None, "us-east-1"),
        (None, "AKID/20240101/ap-south-1/lambda/aws4_request", "ap-south-1"),
        ("Bearer token", None, None),
        (None, None, None),
    ],
)
def test_signed_region_reads_the_credential_scope(authorization, credential, region):
    from lambdad.api.regions import signed_region

    assert signed_region(authorization, credential) == region


def test_made_up_regions_are_not_warned_about(world: ApiWorld):
    warned: list[str] = []
    world.api.regions._warn = warned.append
    for region in ("not a region\x1b[2J", "x" * 500, *(f"eu-west-{n}" for n in range(3, 60))):
        assert run(world.api, "POST", INVOKE, _signed(region), b"{}").status == 200
    assert len(warned) == 32 and all("eu-west-" in w for w in warned)  # bounded, and only real-looking ones
