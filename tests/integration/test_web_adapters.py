"""Real, unmodified web apps behind every HTTP face, in real workers: Powertools' four resolvers,
FastAPI behind Mangum and Flask behind apig-wsgi, each with a `/items/<item>` route that answers
what it saw. Paths holding `%2F`, `%20` and `%2520` and a `Cookie` header reach them as they reach
them on AWS: ALB and REST APIs pass the path as sent, HTTP APIs decode it (twice) before routing,
function URLs keep `rawPath` as sent and the `Cookie` header beside `cookies`. The listeners are
driven in-process with the scope uvicorn builds; one case goes through curl to the raw bytes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    AlbModel,
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    LambdaFunctionUrlModel,
)

from lambdad.http.listener import ListenerApp
from lambdad.logs import LogBook
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from tests.component.asgi import Reply, run
from tests.helpers import FIXTURE_FUNCTIONS, daemon_info, write_manifest
from tests.integration.test_daemon import serving

MANIFEST = """
version: 1
listeners:
  alb: {port: 0}
  rest: {port: 0}
  http: {port: 0}
  http1: {port: 0}
functions:
  pt_alb:
    handler: pt_apps.alb
    code: ./functions
    events: [{alb: {listener: alb, path: "/pt/*"}}]
  pt_rest:
    handler: pt_apps.rest
    code: ./functions
    events: [{api: {listener: rest, route: "GET /pt/items/{item}", payload_format: "1.0"}}]
  pt_http:
    handler: pt_apps.http
    code: ./functions
    events: [{api: {listener: http, route: "GET /pt/items/{item}"}}]
  pt_http1:
    handler: pt_apps.rest
    code: ./functions
    events: [{api: {listener: http1, route: "GET /pt/items/{item}", payload_format: "1.0", api_type: http}}]
  pt_url:
    handler: pt_apps.url
    code: ./functions
    events: [{url: {}}]
  fastapi:
    handler: fastapi_app.handler
    code: ./functions
    events:
      - alb: {listener: alb, path: "/fa/*"}
      - api: {listener: rest, route: "ANY /fa/{proxy+}", payload_format: "1.0"}
      - api: {listener: http, route: "ANY /fa/{proxy+}"}
  fastapi_url:
    handler: fastapi_app.handler
    code: ./functions
    events: [{url: {}}]
  flask:
    handler: flask_app.handler
    code: ./functions
    events:
      - alb: {listener: alb, path: "/fl/*"}
      - api: {listener: rest, route: "ANY /fl/{proxy+}", payload_format: "1.0"}
      - api: {listener: http, route: "ANY /fl/{proxy+}"}
  flask_url:
    handler: flask_app.handler
    code: ./functions
    events: [{url: {}}]
"""

COOKIE = ("cookie", "session=abc123; theme=dark")
COOKIES = {"session": "abc123", "theme": "dark"}
MODELS = {"alb": AlbModel, "rest": APIGatewayProxyEventModel, "http": APIGatewayProxyEventV2Model,
          "http1": APIGatewayProxyEventModel, "url": LambdaFunctionUrlModel}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ListenerApp]]:
    folder = tmp_path_factory.mktemp("adapters")
    shutil.copytree(FIXTURE_FUNCTIONS, folder / "functions")
    manifest = load_manifest(write_manifest(folder, MANIFEST), env={})
    functions = Functions(manifest, LogBook(folder / "logs"), inherited_env={"PATH": os.environ["PATH"]})
    pool = ThreadPoolExecutor(4)
    names = {"alb": "alb", "rest": "rest", "http": "http", "http1": "http1", "url": "pt_url.url", "fastapi_url": "fastapi_url.url",
             "flask_url": "flask_url.url"}
    try:
        yield {face: ListenerApp(name, manifest, functions, pool) for face, name in names.items()}
    finally:
        functions.close()
        pool.shutdown()


def get(apps: dict[str, ListenerApp], face: str, path: str) -> Reply:
    return run(apps[face], "GET", path, [COOKIE])


@pytest.mark.parametrize(("face", "path", "item"), [
    ("alb", "/pt/items/a%2Fb", "a%2Fb"),  # as sent: one segment (it was /pt/items/a/b, a 404)
    ("alb", "/pt/items/a%2520b", "a%2520b"),
    ("rest", "/pt/items/a%2Fb", "a%2Fb"),
    ("rest", "/pt/items/a%20b", "a%20b"),
    ("http", "/pt/items/a%20b", "a b"),  # decoded by the HTTP API
    ("http", "/pt/items/a%2520b", "a b"),  # twice
    ("http1", "/pt/items/a%20b", "a b"),  # an HTTP API sending payload 1.0 decodes as for 2.0
    ("http1", "/pt/items/a%2520b", "a b"),
    ("url", "/pt/items/a%2Fb", "a%2Fb"),  # rawPath as sent
    ("url", "/pt/items/a%20b", "a%20b"),
])
def test_powertools_resolvers_route_the_path_as_aws_sends_it(apps, face: str, path: str, item: str):
    reply = get(apps, face, path)
    assert reply.status == 200, reply.body
    seen = reply.json()
    assert seen["item"] == item and seen["cookies"] == COOKIES
    event = seen["event"]
    MODELS[face](**event)
    if face == "rest":
        assert event["path"] == event["requestContext"]["path"] == path
        assert event["pathParameters"] == {"item": item}
    if face == "http":
        assert event["pathParameters"] == {"item": item} and "cookie" not in event["headers"]
    if face == "http1":
        assert event["path"] == "/pt/items/a b" and event["pathParameters"] == {"item": item}
    if face == "url":
        assert event["rawPath"] == path and event["headers"]["cookie"] == COOKIE[1]
        assert event["cookies"] == ["session=abc123", "theme=dark"]


@pytest.mark.parametrize("face", ["http", "http1"])
def test_an_http_api_routes_on_the_decoded_path(apps, face: str):
    """`/pt/items/a%2Fb` is `/pt/items/a/b` to an HTTP API, whatever its payload format: no route
    takes it (API Gateway's 404, not a REST API's 403)."""
    reply = get(apps, face, "/pt/items/a%2Fb")
    assert (reply.status, reply.json()) == (404, {"message": "Not Found"})


def test_an_http_api_sending_payload_1_0_base64_encodes_a_binary_body(apps):
    """No binaryMediaTypes on an HTTP API: a body that is not text arrives base64, intact."""
    blob = bytes(range(256))
    reply = run(apps["http1"], "GET", "/pt/items/x", [("content-type", "application/octet-stream")], blob)
    event = reply.json()["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == blob
    assert reply.header("apigw-requestid")


@pytest.mark.parametrize(("face", "path", "item", "app_path"), [
    # Mangum decodes `path` (ALB, REST) and `requestContext.http.path` (HTTP API, function URL) once more
    ("alb", "/fa/items/a%2520b", "a%20b", "/fa/items/a%20b"),
    ("alb", "/fa/items/a%20b", "a b", "/fa/items/a b"),
    ("rest", "/fa/items/a%2520b", "a%20b", "/fa/items/a%20b"),
    ("http", "/fa/items/a%2520b", "a b", "/fa/items/a b"),
    ("fastapi_url", "/fa/items/a%2520b", "a b", "/fa/items/a b"),
    # apig-wsgi decodes `path` (ALB, REST) and `rawPath` (HTTP API, function URL) once more
    ("alb", "/fl/items/a%2520b", "a%20b", "/fl/items/a%20b"),
    ("rest", "/fl/items/a%2520b", "a%20b", "/fl/items/a%20b"),
    ("http", "/fl/items/a%2520b", "a b", "/fl/items/a b"),
    ("flask_url", "/fl/items/a%2520b", "a%20b", "/fl/items/a%20b"),
])
def test_mangum_and_apig_wsgi_decode_what_aws_sends_once(apps, face: str, path: str, item: str, app_path: str):
    reply = get(apps, face, path)
    assert reply.status == 200, reply.body
    assert reply.json() == {"item": item, "path": app_path, "cookies": COOKIES}


@pytest.mark.parametrize("face", ["alb", "rest"])
def test_an_encoded_slash_reaches_fastapi_as_a_slash(apps, face: str):
    """Mangum decodes the `%2F` AWS passes on: FastAPI sees /fa/items/a/b and has no route for it."""
    assert get(apps, face, "/fa/items/a%2Fb").status == 404


def test_alb_matches_its_rules_against_the_path_as_sent(apps):
    reply = get(apps, "alb", "/pt%2Fitems%2Fx")  # `/pt/*` would take it decoded
    assert (reply.status, reply.body) == (404, b"Not Found\n")


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing"), ("POST", "/pt/items/x"), ("GET", "/pt/items")])
def test_a_rest_api_answers_a_route_it_lacks_with_missing_authentication_token(apps, method: str, path: str):
    reply = run(apps["rest"], method, path)
    assert (reply.status, reply.json()) == (403, {"message": "Missing Authentication Token"})
    assert reply.header("x-amzn-errortype") == "MissingAuthenticationTokenException"
    assert reply.header("content-type") == "application/json" and reply.header("x-amzn-requestid")


def test_an_http_api_refuses_a_path_whose_decoding_leaves_a_bare_percent(apps):
    reply = get(apps, "http", "/fa/items/100%25done")  # captured: %25do → %do, not an escape
    assert (reply.status, reply.json()) == (400, {"message": "Bad Request"})


def test_the_raw_bytes_through_a_real_server(tmp_path: Path):
    """uvicorn hands over the path decoded; the listener must use the bytes the client sent."""
    shutil.copytree(FIXTURE_FUNCTIONS, tmp_path / "functions")
    write_manifest(tmp_path, "version: 1\nlisteners: {alb: {port: 0}}\nfunctions:\n  pt_alb:\n"
                             "    handler: pt_apps.alb\n    code: ./functions\n"
                             "    events: [{alb: {listener: alb, path: \"/pt/*\"}}]\n")
    with serving(tmp_path):
        url = daemon_info(tmp_path)["listeners"]["alb"]
        done = subprocess.run(["curl", "-s", "--path-as-is", f"{url}/pt/items/a%2Fb%2520c"], capture_output=True,
                              timeout=30)
    seen = json.loads(done.stdout)
    assert seen["item"] == "a%2Fb%2520c" and seen["event"]["path"] == "/pt/items/a%2Fb%2520c"
