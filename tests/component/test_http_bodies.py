"""Response bodies through a real listener, in-process: ALB's reading of a function's answer (a
Powertools ALBResolver app and plain handlers), and a REST route's binary media types both ways (a
Powertools APIGatewayRestResolver app returning bytes), against HTTP API routes that decide alone."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.event_handler import ALBResolver, APIGatewayRestResolver, Response

from lambdad.manifest.model import AlbTrigger, ApiTrigger, Function, Manifest
from lambdad.runtime.invocation import InvokeRequest, Outcome
from tests.component.asgi import listener_world, run

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"

rest = APIGatewayRestResolver()
alb = ALBResolver()


@rest.get("/rest/png")
@alb.get("/alb/png")
def png() -> Response:
    return Response(status_code=200, content_type="image/png", body=PNG)  # bytes: Powertools sends base64


@rest.post("/rest/echo")
def echo_body() -> dict:
    event = rest.current_event
    return {"body": event.body, "isBase64Encoded": event.is_base64_encoded}


@alb.get("/alb/empty")
def empty() -> Response:
    return Response(status_code=204)  # body None: Powertools sends "" (ALB refuses null)


def powertools(req: InvokeRequest) -> tuple[Outcome, bytes]:
    event = json.loads(req.payload)
    app = alb if "elb" in event["requestContext"] else rest
    return Outcome.success, json.dumps(app.resolve(event, None)).encode()


def manifest(tmp_path: Path) -> Manifest:
    def fn(name: str, *triggers) -> Function:
        return Function(name, "app.handler", tmp_path, "python3", events=triggers)

    return Manifest(tmp_path / "lambdad.yaml", functions={
        "binary": fn("binary", ApiTrigger("api", "ANY /rest/{proxy+}", "1.0", binary_media_types=("image/*",))),
        "text": fn("text", ApiTrigger("plain", "ANY /rest/{proxy+}", "1.0")),  # AWS's default: none
        "web": fn("web", AlbTrigger("lb", "/alb/*"), AlbTrigger("lb-multi", "/alb/*", multi_value_headers=True)),
    })


@pytest.mark.parametrize(("listener", "accept", "body"), [
    ("api", "image/png", PNG),  # a binary type first in Accept: decoded
    ("api", "image/webp,image/*,*/*;q=0.8", PNG),
    ("api", "text/html,image/png", base64.b64encode(PNG)),  # only the first Accept type counts
    ("api", None, base64.b64encode(PNG)),
    ("plain", "image/png", base64.b64encode(PNG)),  # no binary media types: the client gets the base64 text
])
def test_rest_routes_decode_base64_only_for_a_binary_accept(tmp_path: Path, listener: str, accept, body: bytes):
    app, _ = listener_world(tmp_path, manifest(tmp_path), listener, powertools)
    reply = run(app, "GET", "/rest/png", [("accept", accept)] if accept else [])
    assert (reply.status, reply.header("content-type"), reply.body) == (200, "image/png", body)


@pytest.mark.parametrize(("listener", "content_type", "body", "encoded"), [
    ("api", "image/png", base64.b64encode(PNG).decode(), True),
    ("api", "application/json", '{"a": 1}', False),
    ("plain", "image/png", PNG.decode("utf-8", errors="replace"), False),  # corrupted, as on AWS
])
def test_rest_routes_base64_request_bodies_only_for_binary_types(tmp_path: Path, listener: str, content_type: str,
                                                                 body: str, encoded: bool):
    app, _ = listener_world(tmp_path, manifest(tmp_path), listener, powertools)
    sent = PNG if content_type == "image/png" else b'{"a": 1}'
    reply = run(app, "POST", "/rest/echo", [("content-type", content_type)], body=sent)
    assert reply.status == 200 and reply.json() == {"body": body, "isBase64Encoded": encoded}


@pytest.mark.parametrize("listener", ["lb", "lb-multi"])
def test_alb_sends_a_powertools_alb_resolver_answer(tmp_path: Path, listener: str):
    app, _ = listener_world(tmp_path, manifest(tmp_path), listener, powertools)
    reply = run(app, "GET", "/alb/png")
    assert (reply.status, reply.header("content-type"), reply.body) == (200, "image/png", PNG)
    reply = run(app, "GET", "/alb/empty")
    assert (reply.status, reply.body) == (204, b"")


def answering(result: object):
    def script(req: InvokeRequest) -> tuple[Outcome, bytes]:
        return Outcome.success, json.dumps(result).encode()
    return script


@pytest.mark.parametrize(("result", "status", "body"), [
    ({"statusCode": 200}, 200, b""),
    ({"statusCode": 201, "body": "made"}, 201, b"made"),
    ({"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "hi"}, 200, b"hi"),
    ({"statusCode": 200, "body": None}, 502, None),
    ({"statusCode": 200, "statusDescription": None, "body": "x"}, 502, None),
    ({"statusCode": "200", "body": "x"}, 502, None),
    ({"statusCode": 200, "headers": {"Content-Length": 1}, "body": "x"}, 502, None),
    ({"body": "no status"}, 502, None),
    ("just text", 502, None),
])
def test_alb_answers_as_alb_judges_a_response(tmp_path: Path, result: object, status: int, body: bytes | None):
    app, _ = listener_world(tmp_path, manifest(tmp_path), "lb", answering(result))
    reply = run(app, "GET", "/alb/x")
    assert reply.status == status
    if body is None:
        assert reply.header("content-type") == "text/html" and b"<h1>502 Bad Gateway</h1>" in reply.body
    else:
        assert reply.body == body


def test_the_reason_for_an_alb_502_is_in_the_functions_log(tmp_path: Path):
    app, _ = listener_world(tmp_path, manifest(tmp_path), "lb", answering({"statusCode": 200, "body": None}))
    run(app, "GET", "/alb/x")
    app.functions.logbook.flush()  # (a background writer writes the log)
    log = (tmp_path / "logs" / "web.log").read_text()
    assert "listener lb: 502 Bad Gateway: invalid response: body must be a string, not null" in log


def test_http_api_routes_keep_their_own_rules(tmp_path: Path):
    """Payload 2.0 has no binary media types: a base64 body is always decoded, a non-text request body encoded."""
    m = Manifest(tmp_path / "lambdad.yaml", functions={"f": Function("f", "app.handler", tmp_path, "python3",
                                                                     events=(ApiTrigger("http", "$default"),))})
    reply = run(listener_world(tmp_path, m, "http", answering({"statusCode": 200, "isBase64Encoded": True,
                                                                "body": base64.b64encode(PNG).decode()}))[0], "GET")
    assert reply.body == PNG
    app, _ = listener_world(tmp_path, m, "http")  # echo: the event comes back as the body
    reply = run(app, "POST", "/", [("content-type", "image/png")], body=PNG)
    event = json.loads(reply.body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == PNG


def test_a_reload_changes_a_routes_binary_media_types_at_once(tmp_path: Path):
    before = manifest(tmp_path)
    app, _ = listener_world(tmp_path, before, "plain", powertools)
    assert run(app, "GET", "/rest/png", [("accept", "image/png")]).body == base64.b64encode(PNG)
    text = before.functions["text"]
    trigger = ApiTrigger("plain", "ANY /rest/{proxy+}", "1.0", binary_media_types=("*/*",))
    app.update(Manifest(before.file, functions={**before.functions, "text": Function(
        text.name, text.handler, text.code, text.python, events=(trigger,))}))
    assert run(app, "GET", "/rest/png", [("accept", "image/png")]).body == PNG
