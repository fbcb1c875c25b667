"""`lambdad status` and `lambdad dlq list`, in-process through `main(argv)`, over a real state folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lambdad.cli import main
from lambdad.services import sqs_rules
from lambdad.statedir import DaemonInfo, StateDir
from lambdad.store import Durability, Store, deadletters

MANIFEST = """\
version: 1
queues:
  jobs: {redrive: {dead_letter_queue: jobs-dlq, max_receive_count: 2}}
  jobs-dlq: {}
  failures: {}
functions:
  worker:
    handler: app.handler
    code: .
    async: {dead_letter: {queue: failures}}
    events:
      - sqs: {queue: jobs}
  idle:
    handler: app.handler
    code: .
    events:
      - sqs: {queue: failures, enabled: false}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    state = tmp_path / ".lambdad"
    StateDir(state).create()
    store = Store.in_state_folder(state, Durability("normal"))
    now = time.time()
    try:
        def fill(tx) -> None:
            for body in (b"a", b"b", b"c"):
                sqs_rules.send(tx, "jobs", body, now)
            sqs_rules.receive(tx, queues_of(tmp_path)["jobs"], now, 1, visibility_s=300)
            sqs_rules.send(tx, "jobs-dlq", b"dead", now)
            deadletters.add(tx, deadletters.DeadLetter(
                0, "req-1", "worker", b"{}", "RetriesExhausted", 3, "Boom", "it broke", None, "queue:failures",
                None, now, now))
        store.write(fill)
    finally:
        store.close()
    return tmp_path


def queues_of(project: Path) -> dict:
    from lambdad.manifest import load_manifest

    return load_manifest(project / "lambdad.yaml").queues


@pytest.fixture
def running(project: Path):
    """A daemon's lock held and its daemon.json written, as `lambdad up` leaves them."""
    state = StateDir(project / ".lambdad")
    state.lock()
    state.write_info(DaemonInfo(pid=1, config="current", sqs_mappings={
        "worker/jobs": {"error": "batch of 1 failed (Unhandled); its messages return after the visibility "
                                 "timeout", "at": 1_700_000_000.0}}))
    yield state
    state.unlock()


def test_status_shows_every_sqs_mapping(project: Path, capsys: pytest.CaptureFixture):
    assert main(["status", "--json"]) == 0
    mappings = json.loads(capsys.readouterr().out)["sqs_mappings"]
    assert mappings == {
        "worker/jobs": {"function": "worker", "queue": "jobs", "enabled": True, "depth": 2, "in_flight": 1,
                        "delayed": 0, "last_error": None},
        "idle/failures": {"function": "idle", "queue": "failures", "enabled": False, "depth": 0, "in_flight": 0,
                          "delayed": 0, "last_error": None},
    }
    assert main(["status"]) == 0
    table = capsys.readouterr().out.split("SQS MAPPING")[1].splitlines()
    assert table[1].split() == ["worker/jobs", "2", "1", "-"]
    assert table[2].split() == ["idle/failures", "(disabled)", "0", "0", "-"]


def test_status_shows_the_last_error_the_daemon_recorded(running: StateDir, capsys: pytest.CaptureFixture):
    assert main(["status", "--json"]) == 0
    error = json.loads(capsys.readouterr().out)["sqs_mappings"]["worker/jobs"]["last_error"]
    assert error["error"].startswith("batch of 1 failed (Unhandled)")
    assert main(["status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("worker/jobs"))
    assert "batch of 1 failed (Unhandled)" in row


def test_dlq_list_for_a_queue_says_what_it_lists(project: Path, capsys: pytest.CaptureFixture):
    assert main(["dlq", "list", "--queue", "failures"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("async invocations whose dead letter was sent to queue failures (lambdad dlq lists "
                          "async dead letters):")
    assert "req-1" in out
    assert out.rstrip().endswith("queue failures has no redrive dead-letter queue (redrive.dead_letter_queue)")
    assert main(["dlq", "list", "--queue", "jobs"]) == 0
    out = capsys.readouterr().out
    assert "no dead letters" in out
    assert "queue jobs's own messages that failed go to its dead-letter queue jobs-dlq: 1 message(s) (see " \
           "lambdad queue receive jobs-dlq)" in out
    assert main(["dlq", "list", "--queue", "jobs-dlq"]) == 0
    assert "it is the dead-letter queue of jobs" in capsys.readouterr().out
    assert main(["dlq", "list", "--queue", "failures", "--json"]) == 0
    assert [d["request_id"] for d in json.loads(capsys.readouterr().out)] == ["req-1"]


def test_dlq_list_of_an_unknown_queue_is_an_error(project: Path, capsys: pytest.CaptureFixture):
    assert main(["dlq", "list", "--queue", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["lambdad: queue 'nope' is not defined (queues: jobs, jobs-dlq, failures)"]
