"""What a listener puts on the wire, through uvicorn and a kept-alive `http.client` connection, on
every face (ALB rules, HTTP API and REST routes, function URLs): a response that must end at its
headers does, so the next one on the connection is read whole; and a response a function makes that
HTTP cannot carry is the face's 502, with the reason in the function's log, not a dropped connection."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from lambdad.http.server import HttpServers, bind
from lambdad.logs import LogRecord
from lambdad.manifest.model import AlbTrigger, ApiTrigger, Endpoint, Function, Manifest
from lambdad.runtime.invocation import InvokeRequest, Outcome
from tests.component.asgi import listener_world
from tests.helpers import wait_for

#: What the function answers, by the path's last segment.
ANSWERS: dict[str, dict] = {
    "ok": {"statusCode": 200, "body": "second"},
    "no-content": {"statusCode": 204, "headers": {"content-type": "application/json"}, "body": "{}"},
    "reset": {"statusCode": 205, "body": "x"},
    "not-modified": {"statusCode": 304, "headers": {"ETag": '"v1"'}, "body": "stale"},
    "switching": {"statusCode": 101, "headers": {"Upgrade": "websocket"}},
    "early-hints": {"statusCode": 103, "body": "x"},
    "crlf": {"statusCode": 200, "headers": {"X-Split": "a\r\nInjected: 1"}, "body": "x"},
    "empty-name": {"statusCode": 200, "headers": {"": "a"}, "body": "x"},
    "euro": {"statusCode": 200, "headers": {"X-Price": "5 \u20ac"}, "body": "x"},
    "cookie-crlf": {"statusCode": 200, "cookies": ["a=1\r\nInjected: 1"], "body": "x"},
}


def answer(req: InvokeRequest) -> tuple[Outcome, bytes]:
    event = json.loads(req.payload)
    path = event.get("rawPath") or event["path"]
    return Outcome.success, json.dumps(ANSWERS[path.rsplit("/", 1)[-1]]).encode()


#: listener -> (function, the content type of its 502)
FACES = {"alb": ("web", "text/html"), "http": ("route", "application/json"),
         "v1": ("rest", "application/json"), "url-url": ("url", "application/json")}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """Each face on a port of its own, served by uvicorn as the daemon serves it."""
    tmp_path = tmp_path_factory.mktemp("wire")

    def fn(name: str, *triggers) -> Function:
        return Function(name, "app.handler", tmp_path, "python3", events=triggers)

    manifest = Manifest(tmp_path / "lambdad.yaml", functions={
        "web": fn("web", AlbTrigger("alb", "/*")),
        "route": fn("route", ApiTrigger("http", "ANY /{proxy+}")),
        "rest": fn("rest", ApiTrigger("v1", "ANY /{proxy+}", payload_format="1.0")),
        "url": fn("url", ApiTrigger("url-url", function_url=True)),
    })
    servers = HttpServers()
    apps = []
    for listener in FACES:
        app, _ = listener_world(tmp_path, manifest, listener, answer)
        sock = bind(Endpoint("127.0.0.1", 0), listener)
        app.port = sock.getsockname()[1]
        servers.add(listener, sock, app)
        apps.append(app)
    servers.start()
    assert servers.wait_started()
    try:
        yield dict(servers.addresses), tmp_path
    finally:
        servers.stop()
        for app in apps:
            app.functions.close()


def connect(address: str) -> closing[http.client.HTTPConnection]:
    return closing(http.client.HTTPConnection(address.removeprefix("http://"), timeout=10))


def get(conn: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    conn.request("GET", path)
    return conn.getresponse()


def then_the_next_response_is_whole(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    reply = get(conn, "/x/ok")
    assert (reply.status, reply.read()) == (200, b"second")
    assert conn.sock is sock  # (the same connection, kept alive)


@pytest.mark.parametrize("listener", FACES)
@pytest.mark.parametrize(("last", "status", "length"), [("no-content", 204, None), ("reset", 205, "0"),
                                                        ("not-modified", 304, None)])
def test_a_response_without_content_ends_at_its_headers(served, listener: str, last: str, status: int,
                                                        length: str | None):
    addresses, _ = served
    with connect(addresses[listener]) as conn:
        reply = get(conn, f"/x/{last}")
        assert (reply.status, reply.read()) == (status, b"")
        assert reply.getheader("content-length") == length
        if status == 304:
            assert reply.getheader("etag") == '"v1"'
        then_the_next_response_is_whole(conn)


def logged(tmp_path: Path, listener: str, line: str) -> bool:
    """Whether the function's log has `line` (waiting for its background writer)."""
    path = tmp_path / "logs" / f"{FACES[listener][0]}.log"

    def messages() -> list[str]:
        return [LogRecord.from_json(r).message for r in path.read_text().splitlines()] if path.is_file() else []

    return wait_for(lambda: any(line in m for m in messages()), what=f"{line!r} in {path.name}")


@pytest.mark.parametrize("listener", FACES)
@pytest.mark.parametrize(("last", "why"), [
    ("switching", "statusCode 101 is informational (1xx)"),
    ("early-hints", "statusCode 103 is informational (1xx)"),
    ("crlf", "headers: header X-Split has a control character ('\\r') in its value"),
    ("empty-name", 'headers: header name "" is not an HTTP token'),
    ("euro", "headers: header X-Price has '€' in its value"),
])
def test_a_response_http_cannot_carry_is_a_502_with_its_reason_logged(served, listener: str, last: str, why: str):
    addresses, tmp_path = served
    with connect(addresses[listener]) as conn:
        reply = get(conn, f"/x/{last}")
        assert (reply.status, reply.getheader("content-type")) == (502, FACES[listener][1])
        assert reply.getheader("injected") is None and reply.read()
        then_the_next_response_is_whole(conn)
    assert logged(tmp_path, listener, why)


def test_a_cookie_http_cannot_carry_is_a_502(served):
    addresses, tmp_path = served
    with connect(addresses["http"]) as conn:
        reply = get(conn, "/x/cookie-crlf")
        assert reply.status == 502 and reply.getheader("injected") is None and reply.read()
        then_the_next_response_is_whole(conn)
    assert logged(tmp_path, "http", "cookies: header set-cookie has a control character")
