"""API Gateway routes and function URLs on a running daemon's listener, called with curl and
urllib: both payload formats (checked against Powertools' models), routing precedence, cookies and
repeated headers, binary bodies both ways, and API Gateway's failure statuses."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model

from tests.fixtures.functions.apigw import PNG
from tests.helpers import FIXTURE_FUNCTIONS, daemon_info, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running, serving

MANIFEST = """
version: 1
listeners:
  web: {port: 0}
  mixed: {port: 0}
functions:
  items:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: "GET /items/{id}"}
      - api: {listener: web, route: "ANY /v2/{proxy+}"}
  new_item:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: "GET /items/new"}
  any_item:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: "ANY /items/{id}"}
  rest:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: "ANY /v1/{proxy+}", payload_format: "1.0",
              binary_media_types: [application/octet-stream, "image/*"]}
  powertools:
    handler: powertools_rest.handler
    code: ./functions
    events:
      - api: {listener: web, route: "ANY /pt/{proxy+}", payload_format: "1.0", binary_media_types: ["image/*"]}
      - api: {listener: web, route: "ANY /pt-text/{proxy+}", payload_format: "1.0"}
  fallback:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: $default}
  slow:
    handler: apigw.handler
    code: ./functions
    timeout: 10
    events:
      - api: {listener: web, route: "GET /wait/slow", timeout: 1s}
  big:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: web, route: "POST /big"}
  short:
    handler: apigw.handler
    code: ./functions
    timeout: 1
    events:
      - api: {listener: web, route: "GET /short/slow"}
  busy:
    handler: apigw.handler
    code: ./functions
    reserved_concurrency: 0
    events:
      - api: {listener: web, route: "GET /busy"}
  own_url:
    handler: apigw.handler
    code: ./functions
    events:
      - url: {}
  legacy:
    handler: web.handler
    code: ./functions
    events:
      - alb: {listener: mixed, path: /alb/*}
  mixed_api:
    handler: apigw.handler
    code: ./functions
    events:
      - api: {listener: mixed, route: "GET /api/{id}"}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("api")
    shutil.copytree(FIXTURE_FUNCTIONS, folder / "functions")
    write_manifest(folder, MANIFEST)
    return folder


@pytest.fixture(scope="module")
def daemon(project: Path) -> Iterator[Running]:
    with serving(project) as running:
        yield running


@pytest.fixture(scope="module")
def web(project: Path, daemon: Running) -> str:
    return daemon_info(project)["listeners"]["web"]


def call(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, head, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, head, data = e.code, e.headers, e.read()
    grouped: dict[str, list[str]] = {}
    for name, value in head.items():
        grouped.setdefault(name.lower(), []).append(value)
    return status, grouped, data


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "-i", *args], capture_output=True, timeout=30)


@pytest.mark.parametrize(("method", "path", "function", "params"), [
    ("GET", "/items/new", "new_item", None),  # an exact path before a {variable}
    ("GET", "/items/42", "items", {"id": "42"}),  # a named method before ANY
    ("DELETE", "/items/42", "any_item", {"id": "42"}),
    ("GET", "/v2/a/b/c", "items", {"proxy": "a/b/c"}),  # greedy
    ("GET", "/items/42/more", "fallback", None),  # no route takes it: $default
    ("POST", "/", "fallback", None),
])
def test_routing_follows_api_gateway_precedence(web: str, method: str, path: str, function: str, params):
    status, headers, data = call(web + path, method)
    assert status == 200 and headers["x-route"] == [function]
    event = json.loads(data)
    assert event.get("pathParameters") == params
    APIGatewayProxyEventV2Model(**event)


def test_payload_2_0_with_curl(web: str):
    done = curl(f"{web}/v2/a%20b?x=1&x=2&y=%2F", "-H", "X-Repeat: one", "-H", "X-Repeat: two",
                "-H", "Cookie: session=abc; theme=dark", "-H", "Content-Type: application/json",
                "--data-binary", '{"k": "v"}')
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"apigw-requestid: " in head
    event = json.loads(body)
    APIGatewayProxyEventV2Model(**event)
    assert event["routeKey"] == "ANY /v2/{proxy+}"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/v2/a b"  # an HTTP API decodes it
    assert event["pathParameters"] == {"proxy": "a b"}
    assert event["rawQueryString"] == "x=1&x=2&y=%2F"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "/"}
    assert event["headers"]["x-repeat"] == "one,two"
    assert event["cookies"] == ["session=abc", "theme=dark"] and "cookie" not in event["headers"]
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default" and event["version"] == "2.0"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1" and event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")


def test_an_http_api_decodes_the_path_before_it_routes(web: str):
    status, _, data = call(f"{web}/items/100%2525")  # decoded twice, as captured from AWS
    assert status == 200 and json.loads(data)["pathParameters"] == {"id": "100%"}
    status, headers, data = call(f"{web}/items/a%2Fb")  # /items/a/b: not GET /items/{id} but $default
    assert status == 200 and headers["x-route"] == ["fallback"] and json.loads(data)["rawPath"] == "/items/a/b"


def test_a_rest_route_gets_the_path_as_sent(web: str):
    status, _, data = call(f"{web}/v1/a%2Fb%20c")
    event = json.loads(data)
    assert status == 200 and event["path"] == "/v1/a%2Fb%20c" and event["pathParameters"] == {"proxy": "a%2Fb%20c"}


def test_an_event_over_six_megabytes_is_refused(project: Path, web: str):
    log = project / ".lambdad" / "logs" / "big.log"
    status, _, data = call(f"{web}/big", "POST", body=b"x" * (6 * 1024 * 1024 + 1),
                           headers={"Content-Type": "text/plain"})
    assert (status, json.loads(data)) == (500, {"message": "Internal server error"})
    wait_for(lambda: log.exists() and "Lambda takes at most 6291456" in log.read_text(), what="the reason in the function's log")
    assert "START RequestId" not in log.read_text()  # the function never ran


def test_payload_1_0_with_urllib(web: str):
    status, _, data = call(f"{web}/v1/orders/7?tag=a&tag=b", "PUT", body=PNG,
                           headers={"Content-Type": "application/octet-stream", "X-Repeat": "one"})
    assert status == 200
    event = json.loads(data)
    APIGatewayProxyEventModel(**event)
    assert event["resource"] == "/v1/{proxy+}" and event["path"] == "/v1/orders/7"
    assert event["httpMethod"] == "PUT" and event["pathParameters"] == {"proxy": "orders/7"}
    assert event["queryStringParameters"] == {"tag": "b"}  # the last value wins ...
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}  # ... and all of them here
    assert event["headers"]["X-Repeat"] == "one" and event["multiValueHeaders"]["X-Repeat"] == ["one"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == PNG
    assert event["stageVariables"] is None
    assert event["requestContext"]["resourcePath"] == "/v1/{proxy+}"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_rest_routes_binary_media_types_with_a_powertools_app(web: str):
    status, headers, data = call(f"{web}/pt/png", headers={"Accept": "image/png"})
    assert (status, headers["content-type"], data) == (200, ["image/png"], PNG)
    status, _, data = call(f"{web}/pt/png")  # no Accept: the base64 text, as API Gateway sends it
    assert (status, data) == (200, base64.b64encode(PNG))
    status, _, data = call(f"{web}/pt-text/png", headers={"Accept": "image/png"})  # no binary media types
    assert (status, data) == (200, base64.b64encode(PNG))
    status, _, data = call(f"{web}/pt/echo", "POST", body=PNG, headers={"Content-Type": "image/png"})
    assert json.loads(data) == {"body": base64.b64encode(PNG).decode(), "isBase64Encoded": True}
    status, _, data = call(f"{web}/pt-text/echo", "POST", body=PNG, headers={"Content-Type": "image/png"})
    assert json.loads(data) == {"body": PNG.decode(errors="replace"), "isBase64Encoded": False}


def test_responses(web: str):
    status, headers, data = call(f"{web}/v2/plain")
    assert (status, headers["content-type"], json.loads(data)) == (200, ["application/json"], {"hello": "world"})
    status, headers, data = call(f"{web}/v2/binary")
    assert status == 200 and data == PNG and headers["content-type"] == ["image/png"]
    status, headers, data = call(f"{web}/v2/cookies")
    assert status == 201 and headers["set-cookie"] == ["a=1", "b=2"] and data == b"two cookies"
    status, headers, data = call(f"{web}/v1/cookies")
    assert status == 201 and headers["set-cookie"] == ["a=1", "b=2"]


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/v2/fail", 502, {"message": "Internal server error"}),  # function error
    ("/v2/invalid", 502, {"message": "Internal server error"}),  # malformed response
    ("/v1/plain", 502, {"message": "Internal server error"}),  # 1.0 needs the proxy response object
    ("/short/slow", 502, {"message": "Internal server error"}),  # the function timed out
    ("/busy", 429, {"message": "Too Many Requests"}),  # throttled
    ("/wait/slow", 504, {"message": "Endpoint request timed out"}),  # past the integration timeout (1 s)
])
def test_failures_answer_as_api_gateway(project: Path, web: str, path: str, status: int, body: dict):
    got, headers, data = call(web + path)
    assert (got, json.loads(data)) == (status, body)
    assert headers["content-type"] == ["application/json"]


def test_why_a_502_is_in_the_functions_log(project: Path, web: str):
    call(f"{web}/v2/invalid")
    log = project / ".lambdad" / "logs" / "items.log"
    wait_for(lambda: "502: invalid response: statusCode must be an integer" in log.read_text(),
             what="the reason for the 502 in the function's log")


def test_alb_rules_and_api_routes_share_a_listener(project: Path, daemon: Running):
    mixed = daemon_info(project)["listeners"]["mixed"]
    status, _, data = call(f"{mixed}/alb/x")
    assert status == 200 and "elb" in json.loads(data)["requestContext"]
    status, _, data = call(f"{mixed}/api/7")
    assert status == 200 and json.loads(data)["pathParameters"] == {"id": "7"}
    status, _, data = call(f"{mixed}/neither")
    assert (status, json.loads(data)) == (404, {"message": "Not Found"})


def test_a_function_url_takes_every_path_and_method(project: Path, daemon: Running):
    url = daemon_info(project)["urls"]["own_url"]
    for method, path in (("GET", "/"), ("PATCH", "/deep/path")):
        status, headers, data = call(url + path, method, body=b"x" if method == "PATCH" else None)
        event = json.loads(data)
        assert status == 200 and headers["x-route"] == ["own_url"]
        APIGatewayProxyEventV2Model(**event)
        assert event["routeKey"] == "$default" and event["rawPath"] == path
        assert len(event["requestContext"]["apiId"]) == 32
        assert event["requestContext"]["accountId"] == "anonymous"  # auth type NONE
    status = run_cli("status", cwd=project).stdout
    assert f"function URL of own_url: {url}/" in status and f"listener web: {daemon_info(project)['listeners']['web']}" \
        in status and "own_url.url" not in status
