"""Kinesis-style streams through a running daemon, with boto3's kinesis client.

- latency: one record at a time, PutRecord -> the handler starts (it reads the wall clock first
  thing); no batching window. Baseline: the PutRecord call's own round trip, same run.
- throughput: 20,000 records sent with PutRecords (500 per call, random partition keys over 4
  shards) -> the last handler finished, batch size 100. Baseline: the same PutRecords calls into a
  stream nobody consumes.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from tests.bench.common import Figure, report, running_daemon, send_to_handler_ms
from tests.helpers import json_lines

HANDLER = """
import json, os, time
OUT = os.environ["BENCH_OUT"]

def handler(event, context):
    t = time.time()
    records = event["Records"]
    with open(OUT, "a") as f:
        f.write(json.dumps({"t": t, "n": len(records), "shard": records[0]["eventID"].split(":")[0]}) + "\\n")
"""


def project(folder: Path, port: int) -> Path:
    out = folder / "handled.jsonl"
    (folder / "fn").mkdir(parents=True)
    (folder / "fn" / "consumer.py").write_text(HANDLER)
    (folder / "lambdad.yaml").write_text(f"""version: 1
api: {{port: {port}}}
streams:
  clicks: {{shards: 4}}
  sink: {{shards: 4}}
functions:
  consumer:
    handler: consumer.handler
    code: ./fn
    timeout: 10
    environment: {{BENCH_OUT: '{out}'}}
    events:
      - kinesis: {{stream: clicks, batch_size: 100, starting_position: LATEST}}
""")
    return out


def handled(out: Path) -> int:
    return sum(x["n"] for x in json_lines(out))


def main(reps: int = 1, n_latency: int = 200, n_throughput: int = 20000) -> list[dict]:
    import boto3

    latency = Figure("PutRecord -> handler start", "ms", goal="(information)")
    rate = Figure("PutRecords -> all handled (batch 100, 4 shards)", "records/s", goal="(information)")
    for _ in range(reps):
        with running_daemon("lambdad-bench-streams-", project) as (port, out):
            kinesis = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                   aws_access_key_id="any", aws_secret_access_key="any")
            for i in range(20):  # warm-up: client, connection, a worker
                kinesis.put_record(StreamName="clicks", PartitionKey="warm", Data=f"warm-{i}".encode())
            while handled(out) < 20:
                time.sleep(0.01)
            latency.add(*send_to_handler_ms(lambda i, kinesis=kinesis: kinesis.put_record(
                StreamName="clicks", PartitionKey=f"k{i}", Data=b"x"), out, n_latency))

            def put_all(stream: str, kinesis=kinesis) -> float:
                t0 = time.perf_counter()
                for start in range(0, n_throughput, 500):
                    kinesis.put_records(StreamName=stream, Records=[
                        {"PartitionKey": uuid.uuid4().hex, "Data": b"record-%d" % (start + i)} for i in range(500)])
                return time.perf_counter() - t0

            put_s = put_all("sink")
            before = handled(out)
            t0 = time.perf_counter()
            put_all("clicks")
            while handled(out) < before + n_throughput:
                time.sleep(0.005)
            total_s = time.perf_counter() - t0
            rate.add([n_throughput / total_s], [n_throughput / put_s])
    return report([latency, rate], "streams")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "1")))
