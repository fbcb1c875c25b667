"""ALB-style listeners of a running daemon, called with curl and http.client: the events ALB builds
(checked against Powertools' AlbModel), the responses it makes of the results, its routing, and its
502s and 413s."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aws_lambda_powertools.utilities.parser.models import AlbModel
from pydantic import BaseModel

from tests.helpers import FIXTURE_FUNCTIONS, daemon_info, wait_for, write_manifest
from tests.integration.test_daemon import Running, serving

MANIFEST = """
version: 1
concurrency: 64
listeners:
  web: {port: 0}
  other: {port: 0}
functions:
  single:
    handler: web.handler
    code: ./functions
    timeout: 1
    events:
      - alb: {listener: web, path: /single/*, priority: 20}
  multi:
    handler: web.handler
    code: ./functions
    events:
      - alb: {listener: web, path: /multi/*, multi_value_headers: true, priority: 30}
  first:
    handler: web.handler
    code: ./functions
    events:
      - alb: {listener: web, path: /route/*, priority: 5, methods: [POST]}
      - alb: {listener: web, path: /route/item-?/which, priority: 6}
      - alb: {listener: other, path: /*, host: "*.example.com"}
  second:
    handler: web.handler
    code: ./functions
    reserved_concurrency: 1
    events:
      - alb: {listener: web, path: /route/*, priority: 10}
      - alb: {listener: web, path: /busy/*, priority: 40}
"""


class MultiValueAlbModel(BaseModel):
    """AlbModel with the multi-value fields ALB sends instead when the target group enables them."""

    httpMethod: str
    path: str
    body: str
    isBase64Encoded: bool
    multiValueHeaders: dict[str, list[str]]
    multiValueQueryStringParameters: dict[str, list[str]]
    requestContext: dict


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("listeners")
    shutil.copytree(FIXTURE_FUNCTIONS, folder / "functions")
    write_manifest(folder, MANIFEST)
    return folder


@pytest.fixture(scope="module")
def daemon(project: Path) -> Iterator[Running]:
    with serving(project) as running:
        yield running


@pytest.fixture(scope="module")
def web(daemon: Running, project: Path) -> str:
    return daemon_info(project)["listeners"]["web"]


def curl(*args: str) -> tuple[int, dict[str, list[str]], bytes]:
    done = subprocess.run(["curl", "-s", "-i", *args], capture_output=True, timeout=30)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # the interim answer to Expect: 100-continue
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers.setdefault(name.lower(), []).append(value)
    return int(lines[0].split()[1]), headers, body


def event_of(body: bytes) -> dict:
    return json.loads(body)


def test_single_value_event_as_alb_builds_it(web: str):
    status, headers, body = curl(f"{web}/single/a%20b?name=foo&name=bar&q=a%20b&flag", "-H", "X-Twice: 1",
                                 "-H", "X-Twice: 2", "-H", "X-Forwarded-For: 10.0.0.1")
    assert status == 200 and headers["content-type"] == ["application/json"]
    assert "connection" not in headers or headers["connection"] != ["close"]  # hop-by-hop: ALB drops it
    event = event_of(body)
    AlbModel(**event)
    assert (event["httpMethod"], event["path"]) == ("GET", "/single/a%20b")  # as sent, as ALB passes it
    assert event["queryStringParameters"] == {"name": "bar", "q": "a%20b", "flag": ""}  # last wins, not decoded
    assert event["headers"]["x-twice"] == "2"
    assert event["headers"]["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == str(urlsplit(web).port)
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
    assert event["requestContext"]["elb"]["targetGroupArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-single/")
    assert (event["body"], event["isBase64Encoded"]) == ("", False)
    assert "multiValueHeaders" not in event and "multiValueQueryStringParameters" not in event


def test_multi_value_event_and_response(web: str):
    status, headers, body = curl(f"{web}/multi/x?name=foo&name=bar", "-H", "X-Twice: 1", "-H", "X-Twice: 2",
                                 "-H", "Cookie: a=1", "-H", "Cookie: b=2")
    event = event_of(body)
    MultiValueAlbModel(**event)
    assert event["multiValueQueryStringParameters"] == {"name": ["foo", "bar"]}
    assert event["multiValueHeaders"]["x-twice"] == ["1", "2"]
    assert event["multiValueHeaders"]["cookie"] == ["a=1", "b=2"]
    assert "headers" not in event and "queryStringParameters" not in event
    status, headers, body = curl(f"{web}/multi/cookies")
    assert status == 201 and headers["set-cookie"] == ["a=1", "b=2"] and body == b"two cookies"


def test_text_and_binary_bodies(web: str, tmp_path: Path):
    _, _, body = curl(f"{web}/single/echo", "-H", "Content-Type: application/json", "--data-binary", '{"k": "v"}')
    event = event_of(body)
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": "v"}', False)
    blob = bytes(range(256)) * 4
    (tmp_path / "blob").write_bytes(blob)
    _, _, body = curl(f"{web}/single/echo", "-H", "Content-Type: application/octet-stream",
                      "--data-binary", f"@{tmp_path / 'blob'}")
    event = event_of(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == blob
    status, headers, body = curl(f"{web}/single/binary")
    assert status == 200 and headers["content-type"] == ["image/png"] and body.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(body) == 16 + 256


def test_chunked_and_expect_continue_uploads(web: str, tmp_path: Path):
    data = b"0123456789" * 20_000  # large enough that curl asks with Expect: 100-continue
    (tmp_path / "data.txt").write_bytes(data)
    _, _, body = curl(f"{web}/single/echo", "-H", "Content-Type: text/plain", "-H", "Transfer-Encoding: chunked",
                      "--data-binary", f"@{tmp_path / 'data.txt'}")
    assert event_of(body)["body"].encode() == data
    _, _, body = curl(f"{web}/single/echo", "-H", "Content-Type: text/plain", "-H", "Expect: 100-continue",
                      "--data-binary", f"@{tmp_path / 'data.txt'}")
    assert event_of(body)["body"].encode() == data


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("POST", "/route/x/which", "first"),  # priority 5 wins over 10 for POST
        ("GET", "/route/x/which", "second"),  # the POST-only rule does not match GET
        ("GET", "/route/item-7/which", "first"),  # ? matches one character
        ("GET", "/route/item-77/which", "second"),  # ... and only one
    ],
)
def test_rules_route_by_priority_method_and_pattern(web: str, method: str, path: str, function: str):
    status, _, body = curl("-X", method, f"{web}{path}")
    assert (status, body.decode()) == (200, function)


def test_host_conditions_and_the_listener_default(daemon: Running, project: Path, web: str):
    other = daemon_info(project)["listeners"]["other"]
    status, _, body = curl(f"{other}/which", "-H", "Host: api.EXAMPLE.com:8080")
    assert (status, body) == (200, b"first")
    status, _, _ = curl(f"{other}/which", "-H", "Host: example.org")
    assert status == 404
    status, _headers, body = curl(f"{web}/nothing/here")
    assert status == 404 and body == b"Not Found\n"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/single/fail", "the function failed (RuntimeError)"),
        ("/single/invalid", "invalid response: statusCode is required"),
        ("/single/slow", "the function failed (Sandbox.Timedout)"),
    ],
)
def test_failures_are_502_and_the_log_says_why(daemon: Running, web: str, path: str, why: str):
    status, headers, body = curl(f"{web}{path}")
    assert status == 502 and b"<h1>502 Bad Gateway</h1>" in body and headers["content-type"] == ["text/html"]
    wait_for(lambda: any(line.endswith(f"[lambdad] listener web: 502 Bad Gateway: {why}") for line in daemon.lines),
             what=f"the reason in the log ({why})")


def test_a_throttled_target_is_502(daemon: Running, web: str):
    def starts() -> int:
        return sum(1 for line in daemon.lines if line.lstrip().startswith("second | START RequestId"))

    before = starts()
    slow = threading.Thread(target=curl, args=(f"{web}/busy/slow",))  # holds the one reserved environment
    slow.start()
    try:
        wait_for(lambda: starts() > before, what="the slow call to hold the slot")  # (3 s, then it times out)
        assert curl(f"{web}/busy/x")[0] == 502
        wait_for(lambda: any("502 Bad Gateway: throttled (ReservedFunctionConcurrentInvocationLimitExceeded)" in ln
                             for ln in daemon.lines), what="the reason in the log")
    finally:
        slow.join(15)


def test_a_body_over_1_mb_is_413(web: str, tmp_path: Path):
    (tmp_path / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    status, _, body = curl(f"{web}/single/echo", "--data-binary", f"@{tmp_path / 'big'}")
    assert status == 413 and b"413 Request Entity Too Large" in body


def test_keep_alive_and_many_connections_at_once(web: str):
    where = urlsplit(web)
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        try:
            for i in range(10):  # one connection, ten requests
                conn.request("GET", f"/single/which?i={i}")
                response = conn.getresponse()
                if (response.status, response.read()) != (200, b"single"):
                    failures.append(f"{response.status}")
        except OSError as e:
            failures.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_a_listener_added_by_a_reload_serves_at_once(daemon: Running, project: Path):
    text = (project / "lambdad.yaml").read_text()
    added = text.replace("  other: {port: 0}\n", "  other: {port: 0}\n  late: {port: 0}\n").replace(
        "      - alb: {listener: web, path: /busy/*, priority: 40}\n",
        "      - alb: {listener: web, path: /busy/*, priority: 40}\n      - alb: {listener: late, path: /*}\n")
    tmp = project / ".lambdad.yaml.swp"
    tmp.write_text(added)
    os.replace(tmp, project / "lambdad.yaml")
    try:
        late = wait_for(lambda: daemon_info(project)["listeners"].get("late"), what="the new listener's address")
        status, _, body = curl(f"{late}/which")
        assert (status, body) == (200, b"second")
    finally:
        tmp.write_text(text)
        os.replace(tmp, project / "lambdad.yaml")
    wait_for(lambda: "late" not in daemon_info(project)["listeners"], what="the listener to go")
    assert subprocess.run(["curl", "-s", f"{late}/which"], capture_output=True, timeout=30).returncode == 7  # refused
