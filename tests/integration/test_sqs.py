"""Local SQS-style queues through a running daemon: boto3's sqs client and the aws CLI send, the
event source mapping delivers, failures are retried by visibility timeout and redriven, FIFO
groups stay in order, and a daemon killed mid-batch loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.helpers import FIXTURE_FUNCTIONS, aws_cli, daemon_info, json_lines, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running, serving

MANIFEST = """
version: 1
defaults:
  environment: {RECORD_FILE: "${RECORD_FILE}"}
queues:
  jobs: {visibility_timeout: 3, redrive: {dead_letter_queue: jobs-dlq, max_receive_count: 2}}
  jobs-dlq: {}
  orders.fifo: {fifo: true, visibility_timeout: 1, content_based_deduplication: true,
                redrive: {dead_letter_queue: orders-dlq.fifo, max_receive_count: 2}}
  orders-dlq.fifo: {fifo: true}
  idle: {}
functions:
  consume:
    handler: consumer.handler
    code: ./functions
    timeout: 1
    events:
      - sqs: {queue: jobs, batch_size: 10, report_batch_item_failures: true}
  ordered:
    handler: consumer.handler
    code: ./functions
    timeout: 1
    environment: {RECORD_FILE: "${RECORD_FILE}.fifo"}
    events:
      - sqs: {queue: orders.fifo, batch_size: 10, report_batch_item_failures: true}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(FIXTURE_FUNCTIONS, tmp_path / "functions")
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "handled.jsonl"))
    write_manifest(tmp_path, MANIFEST)
    return tmp_path


@pytest.fixture
def daemon(project: Path) -> Iterator[Running]:
    with serving(project) as running:
        yield running


def handled(project: Path, suffix: str = "") -> list[dict]:
    return json_lines(project / f"handled.jsonl{suffix}")


def sqs_client(project: Path):
    return boto3.client("sqs", endpoint_url=daemon_info(project)["api"], region_name="us-east-1",
                        aws_access_key_id="any", aws_secret_access_key="any")


def queue_depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_a_thousand_messages_each_handled_once_or_dead_lettered(project: Path, daemon: Running):
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    bodies = [f"bad-{i}" if i % 50 == 0 else f"ok-{i}" for i in range(1000)]
    for start in range(0, 1000, 10):
        result = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])])
        assert len(result["Successful"]) == 10 and not result.get("Failed")
    ok = {b for b in bodies if b.startswith("ok")}
    wait_for(lambda: len({r["body"] for r in handled(project)}) >= len(ok), timeout=60, what="every good message")
    dlq = sqs.get_queue_url(QueueName="jobs-dlq")["QueueUrl"]
    wait_for(lambda: queue_depth(sqs, dlq) == 20 and queue_depth(sqs, url) == 0, timeout=30,
             what="the bad messages in the dead-letter queue")
    counts = Counter(r["body"] for r in handled(project))
    assert set(counts) == ok and set(counts.values()) == {1}  # each good one once, no bad one ever "handled"
    dead = []
    while len(dead) < 20:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        dead += got
        sqs.delete_message_batch(QueueUrl=dlq, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(got)])
    assert sorted(m["Body"] for m in dead) == sorted(b for b in bodies if b.startswith("bad"))


def test_fifo_groups_are_handled_in_order(project: Path, daemon: Running):
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="orders.fifo")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="orders-dlq.fifo")["QueueUrl"]
    sent = []
    for start in range(0, 1000, 10):
        entries = []
        for i in range(start, start + 10):
            group = f"g{i % 10}"
            body = f"bad-{i:04d}-{group}" if i % 97 == 0 else f"ok-{i:04d}-{group}"
            entries.append({"Id": str(i - start), "MessageBody": body, "MessageGroupId": group})
            sent.append(body)
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    wait_for(lambda: queue_depth(sqs, url) == 0, timeout=90, what="the FIFO queue worked off")
    dead = []
    while True:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        dead += [m["Body"] for m in got]
        for m in got:
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    records = handled(project, ".fifo")
    bodies = [r["body"] for r in records]
    assert len(bodies) == len(set(bodies))  # none twice
    assert sorted(bodies + dead) == sorted(sent)  # each handled once or dead-lettered
    assert {b for b in sent if b.startswith("bad")} <= set(dead)
    # (a message held behind a poison one in its group uses up receives too: it may follow it to the DLQ;
    # the rest are delivered, though the queue's visibility timeout equals the function's: 976 of 989 here)
    assert len(bodies) >= len(sent) // 2
    for group in {r["group"] for r in records}:
        mine = [r["body"] for r in records if r["group"] == group]
        assert mine == sorted(mine), f"group {group} out of order"


def test_clients_send_and_receive(project: Path, daemon: Running, tmp_path: Path):
    sqs = sqs_client(project)
    assert sorted(u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]) == sorted(
        ["jobs", "jobs-dlq", "orders.fifo", "orders-dlq.fifo", "idle"])
    url = sqs.get_queue_url(QueueName="idle")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello",
                            MessageAttributes={"Kind": {"DataType": "String", "StringValue": "greeting"}})
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"],
                              VisibilityTimeout=5)["Messages"]
    assert got[0]["Body"] == "hello" and got[0]["MessageAttributes"]["Kind"]["StringValue"] == "greeting"
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # invisible
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    assert queue_depth(sqs, url) == 0
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="nope")
    done = aws_cli().run("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                         "--endpoint-url", daemon_info(project)["api"], folder=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["MD5OfMessageBody"]
    sent = run_cli("queue", "send", "idle", "from lambdad", "--attr", "k=v", cwd=project)
    assert sent.returncode == 0 and sent.stdout.startswith("sent to idle: MessageId ")
    bodies = set()
    wait_for(lambda: bodies.update(m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                                   .get("Messages", [])) or bodies >= {"from the cli", "from lambdad"},
             what="both messages")


def test_long_polling_returns_as_soon_as_a_message_arrives(project: Path, daemon: Running):
    import threading
    import time

    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="idle")["QueueUrl"]
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)))
    started = time.monotonic()
    waiter.start()
    wait_for(lambda: time.monotonic() - started > 1.0, what="the receive to be waiting")  # (the queue is empty)
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="now")
    waiter.join(25)
    assert got[0]["Messages"][0]["Body"] == "now"
    assert time.monotonic() - sent_at < 5  # it came back with the message, not after 20 s


def test_a_daemon_killed_mid_batch_loses_nothing(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLOW", "0.05")
    daemon = Running(project)
    daemon.wait_line("ready in ")
    assert run_cli("queue", "send", "jobs", "ok-0", cwd=project).returncode == 0
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    for start in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m-{start + i}"}
                                                      for i in range(10)])
    wait_for(lambda: len(handled(project)) >= 50, what="some batches handled")
    daemon.stop(signal.SIGKILL)
    with serving(project):
        expected = {f"m-{i}" for i in range(300)} | {"ok-0"}
        wait_for(lambda: {r["body"] for r in handled(project)} >= expected, timeout=60,
                 what="every message handled after the restart")


def test_a_mapping_added_by_a_reload_drains_the_queue(project: Path, daemon: Running):
    assert run_cli("queue", "send", "idle", "waiting", cwd=project).returncode == 0
    manifest = project / "lambdad.yaml"
    text = manifest.read_text().replace(
        "      - sqs: {queue: jobs, batch_size: 10, report_batch_item_failures: true}\n",
        "      - sqs: {queue: jobs, batch_size: 10, report_batch_item_failures: true}\n      - sqs: {queue: idle}\n")
    tmp = project / ".lambdad.yaml.swp"
    tmp.write_text(text)
    os.replace(tmp, manifest)
    daemon.wait_line("reload (saved): ~function consume in ")
    wait_for(lambda: any(r["body"] == "waiting" for r in handled(project)), what="the waiting message handled")


def test_batch_requests_fail_entry_by_entry(project: Path, daemon: Running):
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="idle")["QueueUrl"]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "x", "MessageDeduplicationId": "d"},  # not for a standard queue
    ])
    assert [e["Id"] for e in sent["Successful"]] == ["ok"] and sent["Failed"][0]["Id"] == "bad"
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "a", "ReceiptHandle": got[0]["ReceiptHandle"]}])
    assert deleted["Successful"] == [{"Id": "a"}] and queue_depth(sqs, url) == 0
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=-1)


def test_creating_a_manifest_queue_gives_its_url(project: Path, daemon: Running):
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    assert sqs.create_queue(QueueName="jobs")["QueueUrl"] == url  # start-up code that creates its queue runs
    assert sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "3"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists, match="VisibilityTimeout"):
        sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "45"})
    with pytest.raises(sqs.exceptions.UnsupportedOperation, match="come from the manifest"):
        sqs.create_queue(QueueName="not-in-the-manifest")


def raw_sqs(project: Path, operation: str, doc: dict) -> tuple[int, dict[str, str], dict]:
    """A request no SDK would send (botocore checks types before sending)."""
    request = urllib.request.Request(daemon_info(project)["api"], data=json.dumps(doc).encode(), method="POST",
                                     headers={"X-Amz-Target": f"AmazonSQS.{operation}",
                                              "Content-Type": "application/x-amz-json-1.0"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_a_poison_send_is_refused_and_its_neighbours_are_delivered(project: Path, daemon: Running):
    sqs = sqs_client(project)
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    for poison in ({"MessageAttributes": {"A": {"DataType": "Binary", "BinaryValue": "not base64!"}}},
                   {"MessageAttributes": {"A": {"DataType": 7, "StringValue": "x"}}},
                   {"MessageAttributes": {"A": {"DataType": "String", "StringValue": ["x"]}}},
                   {"MessageBody": {"not": "a string"}}, {"DelaySeconds": "abc"}):
        status, headers, doc = raw_sqs(project, "SendMessage", {"QueueUrl": url, "MessageBody": "poison", **poison})
        assert status == 400 and doc["__type"] == "com.amazonaws.sqs#InvalidParameterValue", doc
        assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    status, _, doc = raw_sqs(project, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": [], "AttributeNames": 1})
    assert status == 400 and doc["__type"] == "com.amazonaws.sqs#InvalidParameterValue"
    with pytest.raises(sqs.exceptions.InvalidMessageContents):
        sqs.send_message(QueueUrl=url, MessageBody="nul \x00")
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"AWS.x": {"DataType": "String",
                                                                                    "StringValue": "v"}})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.send_message(QueueUrl=url, MessageBody="ok-after")
    wait_for(lambda: [r["body"] for r in handled(project)] == ["ok-after"], what="the healthy message handled")
    dlq = sqs.get_queue_url(QueueName="jobs-dlq")["QueueUrl"]
    assert queue_depth(sqs, dlq) == 0 and queue_depth(sqs, url) == 0
    bad = run_cli("queue", "send", "jobs", "x", "--attr", "AWS.k=v", cwd=project)  # the same checks
    assert bad.returncode == 2 and "InvalidParameterValue" in bad.stderr
    idle = sqs.get_queue_url(QueueName="idle")["QueueUrl"]
    sqs.send_message(QueueUrl=idle, MessageBody="b", MessageAttributes={"B": {"DataType": "Binary",
                                                                              "BinaryValue": b"\x00"}})
    shown = run_cli("queue", "receive", "idle", cwd=project)
    assert shown.returncode == 0 and "  B: AA==" in shown.stdout, shown.stderr
