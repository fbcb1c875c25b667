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


LOOP_MANIFEST = """
version: 1
buckets:
  own: {path: ./buckets/own}
  moved: {path: ./buckets/moved}
  free: {path: ./buckets/free}
functions:
  looping:
    handler: self_writer.handler
    code: ./functions
    environment: {RECORD_FILE: "${PROJECT}/looping.jsonl", BUCKET_DIR: "${PROJECT}/buckets/own", LIMIT: "40",
                  SLEEP_AT: "3", SLEEP_S: "2.5"}
    events:
      - s3: {bucket: own}
  moving:
    handler: self_writer.handler
    code: ./functions
    environment: {RECORD_FILE: "${PROJECT}/moving.jsonl", BUCKET_DIR: "${PROJECT}/buckets/moved", LIMIT: "40",
                  MODE: move, STAGE_DIR: "${PROJECT}"}
    events:
      - s3: {bucket: moved}
  allowed:
    handler: self_writer.handler
    code: ./functions
    recursive_loop: allow
    environment: {RECORD_FILE: "${PROJECT}/allowed.jsonl", BUCKET_DIR: "${PROJECT}/buckets/free", LIMIT: "20"}
    events:
      - s3: {bucket: free}
"""


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_handler_writing_into_its_own_bucket_is_stopped_after_16_invocations(
        tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Also when an invocation works on for seconds after its write, and when the files are renamed
    or copied in with an old mtime."""
    from tests.component.cli import run_cli as run_in_process
    from tests.helpers import wait_for
    from tests.integration.test_daemon import serving

    monkeypatch.setenv("PROJECT", str(tmp_path))
    write_manifest(tmp_path, LOOP_MANIFEST)
    with serving(tmp_path):
        for bucket in ("own", "moved", "free"):
            (tmp_path / "buckets" / bucket / "start.txt").write_text("go")

        def dead_letters() -> list:
            done = run_in_process(["dlq", "list", "--json"], cwd=tmp_path)  # (in-process: a poll)
            found = json.loads(done.out) if done.code == 0 else []
            return found if len(found) >= 2 else []

        letters = wait_for(dead_letters, 30, interval=0.1, what="the two stopped events in the dead-letter list")
        wait_for(lambda: len(lines(tmp_path / "allowed.jsonl")) == 21, 30, what="21 invocations of allowed")
    assert sorted((d["function"], d["condition"]) for d in letters) == [
        ("looping", "RecursiveInvocationException"), ("moving", "RecursiveInvocationException")]
    for name in ("looping", "moving"):
        seen = lines(tmp_path / f"{name}.jsonl")
        assert [r["key"] for r in seen] == ["start.txt", *(f"n-{n}.txt" for n in range(1, 16))]
        assert len({tracing.root_of(r["trace"]) for r in seen}) == 1  # one chain, one trace
    assert len(lines(tmp_path / "allowed.jsonl")) == 21  # start.txt, n-1 ... n-20: the handler's own bound


SQS_MANIFEST = """
version: 1
queues:
  work: {redrive: {dead_letter_queue: work-dlq, max_receive_count: 3}}
  work-dlq: {}
functions:
  looper:
    handler: sqs_looper.handler
    code: ./functions
    timeout: 10
    environment: {RECORD_FILE: "${PROJECT}/looper.jsonl", STATE_DIR: "${PROJECT}/.lambdad", QUEUE: work,
                  LIMIT: "40"}
    events:
      - sqs: {queue: work}
"""


def test_boto3_in_a_handler_carries_the_chain_through_sqs_until_it_is_stopped(
        tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch):
    import boto3

    from tests.helpers import daemon_info, wait_for
    from tests.integration.test_daemon import serving

    monkeypatch.setenv("PROJECT", str(tmp_path))
    write_manifest(tmp_path, SQS_MANIFEST)
    with serving(tmp_path):
        sqs = boto3.client("sqs", endpoint_url=daemon_info(tmp_path)["api"], region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="work")["QueueUrl"], MessageBody="1")
        dlq = sqs.get_queue_url(QueueName="work-dlq")["QueueUrl"]
        got = wait_for(lambda: sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"]).get("Messages"), 30,
                       interval=0.1, what="the stopped message in the dead-letter queue")
    seen = lines(tmp_path / "looper.jsonl")
    assert [r["n"] for r in seen] == list(range(1, 17))
    assert seen[0]["trace"] is None and all(tracing.parse(r["trace"]) for r in seen[1:])
    assert got[0]["Body"] == "17" and tracing.chain_count(got[0]["Attributes"]["AWSTraceHeader"], "looper") == 15
