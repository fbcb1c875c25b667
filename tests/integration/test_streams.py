"""Local streams through a running daemon: boto3's kinesis client and the aws CLI put records,
the mapping delivers them in order per shard, a killed daemon resumes with nothing skipped, and
DynamoDB-style change records."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, KinesisDataStreamModel

from tests.fixtures.manifests import STREAMS_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import aws_cli, daemon_info, json_lines, run_cli, wait_for
from tests.integration.test_daemon import Running, gone, serving

project = project_with(STREAMS_MANIFEST, record_file="handled.jsonl")


@pytest.fixture
def daemon(project: Path) -> Iterator[Running]:
    with serving(project) as running:
        yield running


def handled(project: Path, suffix: str = "") -> list[dict]:
    return json_lines(project / f"handled.jsonl{suffix}")


def written_json(path: Path) -> dict | None:
    """The JSON file once the handler finished writing it (it writes it after its records)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def kinesis(project: Path):
    return boto3.client("kinesis", endpoint_url=daemon_info(project)["api"], region_name="us-east-1",
                        aws_access_key_id="any", aws_secret_access_key="any")


def put_many(client, n: int, prefix: str = "r") -> list[str]:
    data = [f"{prefix}-{i}" for i in range(n)]
    for start in range(0, n, 500):
        result = client.put_records(StreamName="clicks", Records=[
            {"Data": d.encode(), "PartitionKey": f"user-{i % 97}"} for i, d in enumerate(data[start:start + 500],
                                                                                   start)])
        assert result["FailedRecordCount"] == 0
    return data


def assert_in_order_per_shard(records: list[dict]) -> None:
    by_shard: dict[str, list[int]] = {}
    for r in records:
        by_shard.setdefault(r["shard"], []).append(int(r["seq"]))
    for shard, seqs in by_shard.items():
        assert seqs == sorted(seqs), f"{shard} out of order"


def test_thousands_of_records_in_order_per_shard(project: Path, daemon: Running):
    client = kinesis(project)
    data = put_many(client, 3000)
    wait_for(lambda: len(handled(project)) >= 3000, timeout=60, what="every record handled")
    records = handled(project)
    assert sorted(r["data"] for r in records) == sorted(data)  # each once
    assert_in_order_per_shard(records)
    assert len({r["shard"] for r in records}) == 4
    KinesisDataStreamModel(**json.loads((project / "handled.jsonl.event").read_text()))
    status = json.loads(run_cli("status", "--json", cwd=project).stdout)
    lanes = status["stream_mappings"]["reader/clicks"]
    assert len(lanes) == 4 and all(lane["lag"] == 0 for lane in lanes)


def test_clients_describe_and_put(project: Path, daemon: Running, tmp_path: Path):
    client = kinesis(project)
    assert client.list_streams()["StreamNames"] == ["clicks"]
    shards = client.list_shards(StreamName="clicks")["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-00000000000{i}" for i in range(4)]
    assert shards[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert client.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["OpenShardCount"] == 4
    described = client.describe_stream(StreamName="clicks")["StreamDescription"]
    assert described["StreamStatus"] == "ACTIVE" and len(described["Shards"]) == 4
    with pytest.raises(client.exceptions.ResourceInUseException):  # it exists: the manifest made it
        client.create_stream(StreamName="clicks", ShardCount=4)
    with pytest.raises(client.exceptions.InvalidArgumentException, match="come from the manifest"):
        client.create_stream(StreamName="other", ShardCount=1)
    put = client.put_record(StreamName="clicks", Data=b"one", PartitionKey="k")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.put_record(StreamName="nope", Data=b"x", PartitionKey="k")
    for bad in ("-1", str(2**128), "abc"):
        with pytest.raises(client.exceptions.InvalidArgumentException, match="ExplicitHashKey"):
            client.put_record(StreamName="clicks", Data=b"x", PartitionKey="k", ExplicitHashKey=bad)
    last = client.put_record(StreamName="clicks", Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128 - 1))
    assert last["ShardId"] == "shardId-000000000003"
    cli = aws_cli()
    done = cli.run("kinesis", "put-record", "--stream-name", "clicks", "--partition-key", "k", *cli.raw_blobs(),
                   "--data", "two", "--endpoint-url", daemon_info(project)["api"], folder=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ShardId"] == put["ShardId"]  # the same key, the same shard
    cli = run_cli("stream", "put", "clicks", "three", "--partition-key", "k", cwd=project)
    assert cli.returncode == 0 and put["ShardId"] in cli.stdout
    with pytest.raises(client.exceptions.ValidationException, match="streamName"):
        client.put_record(StreamName="a b", Data=b"x", PartitionKey="k")
    (project / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    for args in (["x", "--partition-key", "k" * 257], ["--data-file", str(project / "big"), "--partition-key", "k"]):
        refused = run_cli("stream", "put", "clicks", *args, cwd=project)  # as PutRecord refuses it
        assert refused.returncode == 2 and "ValidationException" in refused.stderr, refused.stderr
    wait_for(lambda: [r["data"] for r in handled(project) if r["data"] != "x"] == ["one", "two", "three"],
             what="the three, in order")


def test_a_killed_daemon_resumes_without_skipping(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLOW", "0.05")
    daemon = Running(project)
    daemon.wait_line("ready in ")
    data = put_many(kinesis(project), 2000, "k")
    wait_for(lambda: len(handled(project)) >= 300, what="some records handled")
    tree = daemon.tree()  # (taken before the kill: orphans are no longer the daemon's children)
    daemon.stop(signal.SIGKILL)
    # A handler mid-batch writes on until its runtime sees the daemon gone and takes it down: count
    # what was handled only once every process of the killed daemon has exited.
    wait_for(lambda: gone(tree), what="the killed daemon's workers to exit")
    before = len(handled(project))
    with serving(project):
        wait_for(lambda: {r["data"] for r in handled(project)} >= set(data), timeout=90,
                 what="every record handled after the restart")
    records = handled(project)
    assert_in_order_per_shard(records[:before])
    assert_in_order_per_shard(records[before:])  # the batch the kill cut runs again, from its start, in order


def test_dynamodb_change_records(project: Path, daemon: Running, tmp_path: Path):
    change = tmp_path / "change.json"
    change.write_text(json.dumps({"eventName": "INSERT", "Keys": {"Id": {"N": "7"}},
                                  "NewImage": {"Id": {"N": "7"}, "name": {"S": "ada"}}}))
    done = run_cli("stream", "put", "table", "--change", str(change), cwd=project)
    assert done.returncode == 0, done.stderr
    number = done.stdout.split("SequenceNumber ")[1].strip()
    assert len(number) == 28 and number.isdigit()  # DynamoDB's form (21 to 40 digits), as the handler sees it
    (record,) = wait_for(lambda: handled(project, ".ddb"), what="the change record")
    DynamoDBStreamModel(**wait_for(lambda: written_json(project / "handled.jsonl.ddb.event"), what="the event file"))
    body = record["change"]
    assert body["eventName"] == "INSERT" and body["dynamodb"]["NewImage"]["name"] == {"S": "ada"}
    assert body["dynamodb"]["SequenceNumber"] == number
    assert body["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/table/stream/")
    bad = tmp_path / "bad.json"
    bad.write_text('{"eventName": "UPSERT", "Keys": {}}')
    refused = run_cli("stream", "put", "table", "--change", str(bad), cwd=project)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
