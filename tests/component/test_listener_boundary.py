"""A listener's boundary, in-process: partial bodies run nothing, and lambdad's own failures are answered
as ALB and API Gateway answer theirs (and logged once), on every face: ALB rules, routes, function URLs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lambdad.manifest.model import AlbTrigger, ApiTrigger, Function, Manifest
from lambdad.runtime.invocation import InvokeRequest, Outcome
from tests.component.asgi import listener_world, run
from tests.helpers import FakeClock


def make_manifest(tmp_path: Path) -> Manifest:
    def fn(name: str, *triggers) -> Function:
        return Function(name, "app.handler", tmp_path, "python3", events=triggers)

    return Manifest(tmp_path / "lambdad.yaml", functions={
        "web": fn("web", AlbTrigger("alb", "/*")),
        "route": fn("route", ApiTrigger("http", "ANY /{proxy+}"), ApiTrigger("v1", "ANY /{proxy+}", payload_format="1.0")),
        "url": fn("url", ApiTrigger("url-url", function_url=True)),
    })


FACES = [("alb", "text/html"), ("http", "application/json"), ("v1", "application/json"),
         ("url-url", "application/json")]


@pytest.mark.parametrize(("listener", "content_type"), FACES)
def test_an_aborted_upload_runs_nothing(tmp_path: Path, listener: str, content_type: str):
    app, spawner = listener_world(tmp_path, make_manifest(tmp_path), listener)
    reply = run(app, "POST", "/upload", [("content-length", "500")], chunks=[b"nineteen bytes only"], disconnect=True)
    assert reply.status == 400 and reply.header("content-type") == content_type
    assert not spawner.spawned
    reply = run(app, "POST", "/upload", [("content-length", "500")], body=b"nineteen bytes only")  # short, ended
    assert reply.status == 400 and not spawner.spawned


@pytest.mark.parametrize(("listener", "content_type"), FACES)
def test_a_whole_upload_runs(tmp_path: Path, listener: str, content_type: str):
    app, spawner = listener_world(tmp_path, make_manifest(tmp_path), listener)
    run(app, "POST", "/upload", [("content-length", "19")], chunks=[b"nineteen ", b"bytes only"])
    assert len(spawner.spawned) == 1


@pytest.mark.parametrize(("listener", "body"), [
    ("alb", b"500 Internal Server Error"), ("http", b'{"message":"Internal server error"}'),
    ("url-url", b'{"message":"Internal server error"}')])
def test_lambdads_own_failure_is_the_services_500_and_one_logged_traceback(tmp_path, caplog, monkeypatch, listener,
                                                                           body):
    app, _ = listener_world(tmp_path, make_manifest(tmp_path), listener)

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(app, "_forwarded", broken)
    with caplog.at_level(logging.ERROR, logger="lambdad.http.listener"):
        reply = run(app, "GET", "/x")
    assert reply.status == 500 and body in reply.body and b"Traceback" not in reply.body
    assert [r.exc_info is not None for r in caplog.records] == [True]


@pytest.mark.parametrize("listener", ["alb", "http", "url-url"])
def test_a_request_without_a_trace_gets_a_root_stamped_by_the_listeners_clock(tmp_path: Path, listener: str):
    clock, traces = FakeClock(start=1_800_000_000.0), []

    def handler(req: InvokeRequest) -> tuple[Outcome, bytes]:
        traces.append(req.trace_id)
        return Outcome.success, b'{"statusCode": 200}'

    app, _ = listener_world(tmp_path, make_manifest(tmp_path), listener, handler, clock=clock)
    reply = run(app, "GET", "/x")
    assert reply.status == 200
    assert len(traces) == 1 and traces[0].startswith(f"Root=1-{int(clock.time()):08x}-")
