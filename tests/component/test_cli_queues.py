"""`lambdad queue send|receive|list|purge` and `lambdad dlq` against a state folder with no daemon,
through `main(argv)` in-process: what is sent is what is received, SendMessage's checks, the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.component.cli import run_cli
from tests.helpers import write_manifest

MANIFEST = """
version: 1
queues:
  jobs: {redrive: {dead_letter_queue: jobs-dlq, max_receive_count: 2}}
  jobs-dlq: {}
  orders.fifo: {fifo: true}
functions:
  f:
    handler: app.handler
    code: .
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    write_manifest(tmp_path, MANIFEST)
    return tmp_path


def test_a_sent_message_is_received_once_then_in_flight(project: Path):
    sent = run_cli(["queue", "send", "jobs", "hello", "--attr", "k=v"], cwd=project)
    assert sent.code == 0, sent.err
    assert sent.out.startswith("sent to jobs: MessageId ")
    message_id = sent.out.split("MessageId ")[1].strip()
    got = run_cli(["queue", "receive", "jobs", "--json"], cwd=project)
    assert got.code == 0, got.err
    (message,) = json.loads(got.out)
    assert (message["MessageId"], message["Body"]) == (message_id, "hello")
    assert message["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert run_cli(["queue", "receive", "jobs"], cwd=project).out == "no visible messages\n"
    depths = json.loads(run_cli(["queue", "list", "--json"], cwd=project).out)
    assert depths["jobs"] == {"visible": 0, "in_flight": 1, "delayed": 0,
                              "dead_letter_queue": {"name": "jobs-dlq", "depth": 0}}
    assert run_cli(["queue", "list"], cwd=project).out.splitlines() == [
        "QUEUE        VISIBLE  IN FLIGHT  DELAYED  DEAD-LETTER QUEUE",
        "jobs         0        1          0        jobs-dlq (0)",
        "jobs-dlq     0        0          0",
        "orders.fifo  0        0          0",
    ]
    assert run_cli(["queue", "purge", "jobs"], cwd=project).out == "purged 1 message(s) from jobs\n"


def test_the_received_text_table_shows_attributes_and_body(project: Path):
    assert run_cli(["queue", "send", "jobs-dlq", "the body", "--attr", "who=cli"], cwd=project).code == 0
    shown = run_cli(["queue", "receive", "jobs-dlq"], cwd=project)
    lines = shown.out.splitlines()
    assert lines[0].startswith("MessageId: ") and lines[0].endswith("  ReceiveCount: 1")
    assert lines[1:] == ["  who: cli", "  Body: the body"]


def test_a_fifo_send_needs_a_group_and_a_repeated_dedup_id_is_not_sent_again(project: Path):
    missing = run_cli(["queue", "send", "orders.fifo", "x"], cwd=project)
    assert (missing.code, missing.err) == (
        2, "lambdad: MissingParameter: The request must contain the parameter MessageGroupId.\n")
    first = run_cli(["queue", "send", "orders.fifo", "x", "--group", "g", "--dedup-id", "d", "--json"], cwd=project)
    assert first.code == 0, first.err
    doc = json.loads(first.out)
    assert set(doc) == {"MessageId", "SequenceNumber"} and doc["SequenceNumber"].isdigit()
    again = run_cli(["queue", "send", "orders.fifo", "x", "--group", "g", "--dedup-id", "d"], cwd=project)
    assert again.out == f"sent to orders.fifo: MessageId {doc['MessageId']} (a duplicate: not sent again)\n"
    assert json.loads(run_cli(["queue", "list", "--json"], cwd=project).out)["orders.fifo"]["visible"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["jobs", "x", "--attr", "novalue"], "lambdad: --attr 'novalue': use NAME=VALUE\n"),
    (["jobs", "x", "--delay", "abc"],
     "lambdad: --delay: 'abc' is not a duration: use seconds (90) or a string such as 90s, 5m, 6h\n"),
    (["jobs", "x", "--delay", "1000s"], "lambdad: InvalidParameterValue: Value 1000 for parameter DelaySeconds is "
                                        "invalid. Reason: must be between 0 and 900, if provided.\n"),
    (["jobs", "file://binary"], "lambdad: InvalidMessageContents: an SQS message body is text (UTF-8); send binary "
                                "data as base64\n"),
    (["jobs", "x", "--attr", "AWS.k=v"], "lambdad: InvalidParameterValue: The message attribute name 'AWS.k' is "
                                         "reserved: names starting with 'AWS.' or 'Amazon.' (in any case) are for "
                                         "AWS's own use.\n"),
    (["nope", "x"], "lambdad: queue 'nope' is not defined (queues: jobs, jobs-dlq, orders.fifo)\n"),
])
def test_a_refused_send_is_one_line_exit_2_and_sends_nothing(project: Path, args: list[str], message: str):
    (project / "binary").write_bytes(b"\xff")
    done = run_cli(["queue", "send", *args], cwd=project)
    assert (done.code, done.out, done.err) == (2, "", message)
    depths = json.loads(run_cli(["queue", "list", "--json"], cwd=project).out)
    assert sum(d["visible"] + d["delayed"] for d in depths.values()) == 0


def test_dead_letter_commands_with_none_to_act_on(project: Path):
    assert run_cli(["dlq", "list", "--json"], cwd=project).out == "[]\n"
    assert run_cli(["dlq", "purge"], cwd=project).out == "purged 0 dead letter(s)\n"
    assert run_cli(["dlq", "redrive", "--all", "--function", "f"], cwd=project).out == "redrove 0 event(s)\n"
    shown = run_cli(["dlq", "show", "1", "--json"], cwd=project)
    assert (shown.code, shown.err) == (2, "lambdad: no dead letter with id 1 (see lambdad dlq list)\n")
    purged = run_cli(["queue", "purge", "nope"], cwd=project)
    assert (purged.code, purged.err) == (2, "lambdad: queue 'nope' is not defined (queues: jobs, jobs-dlq, "
                                            "orders.fifo)\n")
