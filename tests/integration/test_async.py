"""The async path through a real daemon: dead letters, SIGKILL with events in flight, redrive, the CLI."""

from __future__ import annotations

import json
import signal
from pathlib import Path

# in-process: the tests poll with it, and a poll should not cost an interpreter start
from tests.component.cli import cli_json
from tests.fixtures.manifests import ASYNC_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import run_cli, wait_for
from tests.integration.test_daemon import Running

project = project_with(ASYNC_MANIFEST)


def received(project: Path) -> list[dict]:
    path = project / "received.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def status(project: Path) -> dict:
    return cli_json(project, "status")["functions"]["recorder"]


def invoke_event(project: Path, payload: dict) -> None:
    done = run_cli("invoke", "recorder", "--invocation-type", "Event", "--payload", json.dumps(payload), cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"StatusCode": 202}


def test_a_failing_event_ends_in_the_dead_letter_queue(project: Path):
    (project / "flag").touch()
    daemon = Running(project)
    try:
        daemon.wait_line("ready in ")
        invoke_event(project, {"fail_while_exists": str(project / "flag"), "n": 1})
        dead = wait_for(lambda: cli_json(project, "dlq", "list"), what="a dead letter")
    finally:
        code = daemon.stop()
    assert code == 0
    (letter,) = dead
    attempts = received(project)
    assert len(attempts) == 2 and len({a["request_id"] for a in attempts}) == 1  # 1 + 1 retry, one request id
    assert letter["request_id"] == attempts[0]["request_id"]
    assert (letter["condition"], letter["invocations"], letter["error_type"]) == ("RetriesExhausted", 2, "RuntimeError")
    assert letter["target"] == "queue:failed"
    (message,) = cli_json(project, "queue", "receive", "failed")
    assert json.loads(message["Body"]) == {"fail_while_exists": str(project / "flag"), "n": 1}
    assert message["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": letter["request_id"]},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "told to fail"},
    }
    shown = cli_json(project, "dlq", "show", str(letter["id"]))
    assert shown["last_error"]["errorType"] == "RuntimeError"
    assert shown["last_error"]["stackTrace"][0].startswith('  File "')
    assert any("attempt 1 of 2 failed (RuntimeError)" in line for line in daemon.lines)

    # redrive: the cause is fixed, the original event runs again with a new id and succeeds
    (project / "flag").unlink()
    done = run_cli("dlq", "redrive", str(letter["id"]), cwd=project)
    assert done.stdout == "redrove 1 event(s)\n"
    assert cli_json(project, "dlq", "list") == []
    assert cli_json(project, "queue", "list")["failed"]["in_flight"] == 0  # its copy left the queue too
    again = Running(project)  # queued while no daemon ran; `up` resumes it
    try:
        again.wait_line("resuming 1 queued async event(s)")
        wait_for(lambda: status(project)["succeeded"] == 1, what="the redriven event to succeed")
    finally:
        code = again.stop()
    assert code == 0
    last = received(project)[-1]
    assert last["event"]["n"] == 1 and last["request_id"] != letter["request_id"]


def test_sigkill_with_events_queued_and_in_flight_loses_nothing(project: Path):
    total = 8
    for n in range(total):  # queued straight into the store: no daemon runs yet
        invoke_event(project, {"n": n, "sleep": 0.3})
    assert status(project)["queued"] == total
    daemon = Running(project)
    daemon.wait_line("ready in ")
    wait_for(lambda: len(received(project)) >= 3, what="a few events to start")
    daemon.stop(signal.SIGKILL)  # one is in flight, most are queued
    mid = status(project)
    assert mid["succeeded"] + mid["queued"] + mid["retrying"] + mid["in_flight"] == total
    again = Running(project)
    try:
        wait_for(lambda: status(project)["succeeded"] == total, timeout=30, what="every event to finish")
    finally:
        code = again.stop()
    assert code == 0
    final = status(project)
    assert (final["succeeded"], final["failed"], final["queued"], final["in_flight"]) == (total, 0, 0, 0)
    seen = {r["event"]["n"] for r in received(project)}
    assert seen == set(range(total))  # at least once each; the one killed mid-run ran twice
    records = [json.loads(m["Body"]) for m in cli_json(project, "queue", "receive", "done", "--max", "10")]
    assert len(records) == total  # exactly one success record per event, however often it ran
    assert {r["requestPayload"]["n"] for r in records} == set(range(total))
    assert {r["requestContext"]["condition"] for r in records} == {"Success"}
