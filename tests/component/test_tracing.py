"""Trace headers end to end in-process: every invocation's `_X_AMZN_TRACE_ID` continues the request's
trace (listeners, routes, function URLs, the Invoke API) or starts one, and an async event keeps one
trace for all its retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdad import tracing
from lambdad.manifest.model import AsyncConfig, Function, Manifest
from lambdad.runtime.invocation import InvokeRequest, Outcome
from tests.component.asgi import ApiWorld, listener_world, run
from tests.component.test_listener_boundary import make_manifest

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
INVOKE = "/2015-03-31/functions/f/invocations"


class Recorder:
    """A script that keeps every request it ran, answering with the event (or failing when told)."""

    def __init__(self, fail: bool = False) -> None:
        self.requests: list[InvokeRequest] = []
        self.fail = fail

    def __call__(self, req: InvokeRequest) -> tuple[Outcome, bytes]:
        self.requests.append(req)
        if self.fail:
            return Outcome.error, b'{"errorType": "ValueError", "errorMessage": "no"}'
        return Outcome.success, json.dumps({"statusCode": 200, "body": req.payload.decode()}).encode()

    def roots(self) -> list[str | None]:
        return [tracing.root_of(r.trace_id) for r in self.requests]



def event_trace(req: InvokeRequest) -> str:
    event = json.loads(req.payload)
    headers = {k.lower(): v for k, v in event["headers"].items()}
    return headers["x-amzn-trace-id"]


@pytest.mark.parametrize("listener", ["alb", "http", "v1", "url-url"])
def test_a_request_without_a_trace_header_gets_one_and_the_invocation_shares_its_root(tmp_path, listener):
    recorder = Recorder()
    app, _ = listener_world(tmp_path, make_manifest(tmp_path), listener, recorder)
    run(app, "GET", "/page")
    (req,) = recorder.requests
    header = event_trace(req)
    assert header.startswith("Root=1-") and tracing.parse(header) is not None
    assert tracing.root_of(req.trace_id) == tracing.root_of(header)
    parsed = tracing.parse(req.trace_id)
    assert parsed.parent and parsed.sampled == "0"


@pytest.mark.parametrize("listener", ["alb", "http", "url-url"])
def test_the_clients_trace_header_is_passed_on_and_continued(tmp_path, listener):
    recorder = Recorder()
    app, _ = listener_world(tmp_path, make_manifest(tmp_path), listener, recorder)
    sent = f"Root={ROOT};Sampled=1"
    run(app, "GET", "/page", [("X-Amzn-Trace-Id", sent)])
    run(app, "GET", "/page")
    first, second = recorder.requests
    assert event_trace(first) == sent
    assert tracing.root_of(first.trace_id) == ROOT and tracing.parse(first.trace_id).sampled == "1"
    assert tracing.root_of(second.trace_id) not in (None, ROOT)  # each request is a trace of its own


def api_manifest(tmp_path: Path) -> Manifest:
    cfg = AsyncConfig(maximum_retry_attempts=2)
    return Manifest(tmp_path / "lambdad.yaml", functions={"f": Function("f", "app.handler", tmp_path, "python3",
                                                                         async_config=cfg)})


def test_the_invoke_api_continues_the_callers_trace_and_starts_one_without(tmp_path):
    recorder = Recorder()
    world = ApiWorld(tmp_path, api_manifest(tmp_path), recorder)
    try:
        run(world.api, "POST", INVOKE, [("X-Amzn-Trace-Id", f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0")],
            body=b"{}")
        run(world.api, "POST", INVOKE, body=b"{}")
    finally:
        world.close()
    assert recorder.roots()[0] == ROOT
    assert recorder.roots()[1] not in (None, ROOT)


def test_an_async_event_keeps_one_trace_across_its_retries(tmp_path):
    recorder = Recorder(fail=True)
    world = ApiWorld(tmp_path, api_manifest(tmp_path), recorder)
    try:
        reply = run(world.api, "POST", INVOKE, [("x-amz-invocation-type", "Event"),
                                                ("X-Amzn-Trace-Id", f"Root={ROOT};Sampled=0")], body=b"{}")
        assert reply.status == 202
        run(world.api, "POST", INVOKE, [("x-amz-invocation-type", "Event")], body=b"{}")
        for _ in range(3):
            world.dispatcher.step(world.clock.time())
            world.clock.advance(121)
    finally:
        world.close()
    assert len(recorder.requests) == 6
    by_request: dict[str, set[str]] = {}
    for req in recorder.requests:
        by_request.setdefault(req.request_id, set()).add(req.trace_id)
    assert all(len(traces) == 1 for traces in by_request.values())  # every retry: the same header
    assert sorted(r == ROOT for r in set(recorder.roots())) == [False, True]


def looping_header(function: str, count: int) -> str:
    return f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0;Lineage=1:{tracing.function_hash(function)}:{count}"


@pytest.mark.parametrize(("recursive_loop", "count", "stopped"), [
    ("terminate", 15, True), ("terminate", 14, False), ("allow", 15, False)])
def test_a_synchronous_invoke_continuing_a_loop_is_refused(tmp_path, recursive_loop, count, stopped):
    from dataclasses import replace

    from lambdad.manifest.model import RecursiveLoop

    recorder = Recorder()
    manifest = api_manifest(tmp_path)
    fn = replace(manifest.functions["f"], recursive_loop=RecursiveLoop(recursive_loop))
    world = ApiWorld(tmp_path, replace(manifest, functions={"f": fn}), recorder)
    try:
        reply = run(world.api, "POST", INVOKE, [("X-Amzn-Trace-Id", looping_header("f", count))], body=b"{}")
    finally:
        world.close()
    if stopped:
        assert (reply.status, reply.header("x-amzn-ErrorType")) == (400, "RecursiveInvocationException")
        assert recorder.requests == []
    else:
        assert reply.status == 200 and tracing.chain_count(recorder.requests[0].trace_id, "f") == count + 1
