"""`lambdad stream put` in-process through `main(argv)`: it refuses what PutRecord refuses, in the
same words (both put through the streams service), and what it puts is what `status` counts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lambdad.cli import main
from lambdad.errors import EXIT_OK, EXIT_USAGE
from tests.component.protocol_apis import Apis

MANIFEST = """\
version: 1
streams:
  clicks: {shards: 2}
functions:
  reader:
    handler: app.handler
    code: .
    events:
      - kinesis: {stream: clicks}
"""
TOO_BIG = b"x" * (1024 * 1024 + 1)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    (tmp_path / "big").write_bytes(TOO_BIG)
    return tmp_path


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


def lag(capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["status", "--json"]) == EXIT_OK
    return sum(lane["lag"] for lane in json.loads(capsys.readouterr().out)["stream_mappings"]["reader/clicks"])


@pytest.mark.parametrize(("args", "key", "data"), [
    (["x", "--partition-key", "k" * 257], "k" * 257, b"x"),
    (["--data-file", "big", "--partition-key", "k"], "k", TOO_BIG),
], ids=["partition key too long", "data over 1 MiB"])
def test_stream_put_refuses_what_put_record_refuses_in_one_line(project: Path, capsys, args, key, data):
    (project / "api").mkdir()
    expected = put_record_refusal(project, key, data)
    code = main(["stream", "put", "clicks", *args])
    out, err = capsys.readouterr()
    assert (code, out) == (EXIT_USAGE, "")
    assert err == f"lambdad: {expected}\n"  # one line, PutRecord's words
    assert "ValidationException" in err
    assert main(["stream", "put", "clicks", "fine", "--partition-key", "k"]) == EXIT_OK
    capsys.readouterr()
    assert lag(capsys) == 1  # the refused record was not put


def test_a_put_record_shows_its_kinesis_ids(project: Path, capsys):
    assert main(["stream", "put", "clicks", "one", "--partition-key", "k", "--json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["ShardId"].startswith("shardId-") and len(doc["SequenceNumber"]) == 56
