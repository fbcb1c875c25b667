"""`lambdad stream put` against a state folder with no daemon, through `main(argv)` in-process: a
record's shard and sequence number, PutRecord's checks in PutRecord's words (the command and the Kinesis
API put through the same streams service), and DynamoDB-style change files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lambdad.errors import EXIT_OK, EXIT_USAGE
from tests.component.cli import run_cli
from tests.component.protocol_apis import Apis
from tests.helpers import write_manifest

MANIFEST = """
version: 1
streams:
  clicks: {shards: 4}
  table: {format: dynamodb}
functions:
  reader:
    handler: app.handler
    code: .
    events:
      - kinesis: {stream: clicks}
  changes:
    handler: app.handler
    code: .
    events:
      - dynamodb: {stream: table}
"""

TOO_BIG = b"x" * (1024 * 1024 + 1)
CHANGE = {"eventName": "INSERT", "Keys": {"Id": {"N": "7"}}, "NewImage": {"Id": {"N": "7"}}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    write_manifest(tmp_path, MANIFEST)
    (tmp_path / "change.json").write_text(json.dumps(CHANGE))
    return tmp_path


def lag(project: Path, mapping: str = "reader/clicks") -> int:
    done = run_cli(["status", "--json"], cwd=project)
    assert done.code == EXIT_OK, done.err
    lanes = json.loads(done.out)["stream_mappings"][mapping]
    return sum(lane["lag"] for lane in lanes)


def test_one_key_one_shard_in_sequence(project: Path):
    first = run_cli(["stream", "put", "clicks", "x", "--partition-key", "k", "--json"], cwd=project)
    assert first.code == 0, first.err
    doc = json.loads(first.out)
    assert doc["ShardId"].startswith("shardId-00000000000") and doc["SequenceNumber"].isdigit()
    second = run_cli(["stream", "put", "clicks", "y", "--partition-key", "k"], cwd=project)
    shard, number = second.out.removeprefix("put into clicks: ").split(" SequenceNumber ")
    assert shard == doc["ShardId"]  # the same key, the same shard
    assert int(number) > int(doc["SequenceNumber"])
    assert lag(project) == 2


def test_a_change_file_goes_into_a_dynamodb_stream(project: Path):
    done = run_cli(["stream", "put", "table", "--change", "change.json"], cwd=project)
    assert done.code == 0, done.err
    assert done.out.startswith("put into table: shardId-")
    number = done.out.split("SequenceNumber ")[1].strip()
    assert len(number) == 28 and number.isdigit()  # DynamoDB's form (21 to 40 digits)
    assert lag(project, "changes/table") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["clicks"], "lambdad: give the data, or --data-file\n"),
    (["clicks", "x", "--data-file", "change.json"], "lambdad: give the data, or --data-file\n"),
    (["clicks", "x", "--partition-key", "k" * 257], "lambdad: ValidationException: 1 validation error detected: "
     "Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and 256\n"),
    (["clicks", "--data-file", "big", "--partition-key", "k"], "lambdad: ValidationException: 1 validation error "
     "detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576\n"),
    (["clicks", "--data-file", "missing"], "lambdad: cannot read 'missing': No such file or directory\n"),
    (["clicks", "x", "--change", "change.json"],
     "lambdad: stream 'clicks' is a kinesis stream: --change is for dynamodb streams\n"),
    (["table"], "lambdad: stream 'table' is a dynamodb stream: give --change FILE\n"),
    (["table", "--change", "bad.json"], "lambdad: bad.json: eventName must be INSERT, MODIFY or REMOVE\n"),
    (["table", "--change", "text.json"], "lambdad: text.json: not JSON (Expecting value: line 1 column 1 (char 0))\n"),
    (["table", "--change", "missing.json"], "lambdad: cannot read 'missing.json': No such file or directory\n"),
    (["nope", "x"], "lambdad: stream 'nope' is not defined (streams: clicks, table)\n"),
])
def test_a_refused_put_is_one_line_exit_2_and_puts_nothing(project: Path, args: list[str], message: str):
    (project / "big").write_bytes(TOO_BIG)
    (project / "bad.json").write_text('{"eventName": "UPSERT", "Keys": {}}')
    (project / "text.json").write_text("nope\n")
    done = run_cli(["stream", "put", *args], cwd=project)
    assert (done.code, done.out, done.err) == (2, "", message)
    assert lag(project) == lag(project, "changes/table") == 0


def put_record_refusal(tmp_path: Path, key: str, data: bytes) -> str:
    """What the Kinesis API answers PutRecord with for the record."""
    apis = Apis(tmp_path / "api")
    try:
        status, _, doc = apis.call_kinesis("PutRecord", {"StreamName": "clicks", "PartitionKey": key,
                                                         "Data": base64.b64encode(data).decode()})
    finally:
        apis.close()
    assert status == 400, doc
    return f"{doc['__type']}: {doc['message']}"


@pytest.mark.parametrize(("args", "key", "data"), [
    (["x", "--partition-key", "k" * 257], "k" * 257, b"x"),
    (["--data-file", "big", "--partition-key", "k"], "k", TOO_BIG),
], ids=["partition key too long", "data over 1 MiB"])
def test_stream_put_refuses_what_put_record_refuses_in_one_line(project: Path, args, key, data):
    (project / "big").write_bytes(TOO_BIG)
    (project / "api").mkdir()
    expected = put_record_refusal(project, key, data)
    done = run_cli(["stream", "put", "clicks", *args], cwd=project)
    assert (done.code, done.out) == (EXIT_USAGE, "")
    assert done.err == f"lambdad: {expected}\n"  # one line, PutRecord's words
    assert "ValidationException" in done.err
    assert run_cli(["stream", "put", "clicks", "fine", "--partition-key", "k"], cwd=project).code == EXIT_OK
    assert lag(project) == 1  # the refused record was not put


def test_a_put_record_shows_its_kinesis_ids(project: Path):
    done = run_cli(["stream", "put", "clicks", "one", "--partition-key", "k", "--json"], cwd=project)
    assert done.code == EXIT_OK
    doc = json.loads(done.out)
    assert doc["ShardId"].startswith("shardId-") and len(doc["SequenceNumber"]) == 56
