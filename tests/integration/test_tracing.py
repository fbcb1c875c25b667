"""Trace ids in real worker processes: what Powertools' Logger logs as `xray_trace_id` is the request's
trace id, as on Lambda."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lambdad import tracing
from lambdad.http.listener import ListenerApp
from lambdad.logs import LogBook, read_records
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from tests.component.asgi import run
from tests.helpers import write_manifest

MANIFEST = """
version: 1
listeners:
  web: {port: 0}
functions:
  traced:
    handler: traced.handler
    code: ./functions
    events:
      - alb: {listener: web, path: /*}
"""
ROOT = "1-5759e988-bd862e3fe1be46a994272793"


@pytest.fixture
def functions(tmp_path: Path, functions_dir: Path):
    manifest = load_manifest(write_manifest(tmp_path, MANIFEST), env={})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), inherited_env={"PATH": os.environ["PATH"]})
    yield functions
    functions.close()


def powertools_records(functions: Functions) -> list[dict]:
    functions.flush_logs()
    found = []
    for record in read_records(functions.logbook.folder, "traced"):
        try:
            found.append(json.loads(record.message))
        except ValueError:
            continue
    return found


def test_powertools_logs_the_requests_trace_id(functions: Functions):
    app = ListenerApp("web", functions.manifest, functions, ThreadPoolExecutor(2))
    sent = run(app, "GET", "/a", [("X-Amzn-Trace-Id", f"Root={ROOT};Sampled=0")]).json()
    fresh = run(app, "GET", "/b").json()
    assert tracing.root_of(sent["env"]) == ROOT
    assert tracing.root_of(fresh["env"]) not in (None, ROOT)
    assert [r["xray_trace_id"] for r in powertools_records(functions)] == [ROOT, tracing.root_of(fresh["env"])]
