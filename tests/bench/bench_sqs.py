"""SQS-style queues through a running daemon, with boto3's sqs client.

- latency: one message at a time, SendMessage -> the handler starts (it reads the wall clock
  first thing); no batching window. Baseline: the SendMessage call's own round trip, same run.
- throughput: 2,000 messages sent with SendMessageBatch (10 per call) -> the last handler finished,
  batch size 10. Baseline: the same SendMessageBatch calls into a queue nobody consumes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.bench.common import Figure, report, running_daemon, send_to_handler_ms
from tests.helpers import json_lines

HANDLER = """
import json, os, time
OUT = os.environ["BENCH_OUT"]

def handler(event, context):
    t = time.time()
    with open(OUT, "a") as f:
        for r in event["Records"]:
            f.write(json.dumps({"t": t, "body": r["body"]}) + "\\n")
"""


def project(folder: Path, port: int) -> Path:
    out = folder / "handled.jsonl"
    (folder / "fn").mkdir(parents=True)
    (folder / "fn" / "consumer.py").write_text(HANDLER)
    (folder / "lambdad.yaml").write_text(f"""version: 1
api: {{port: {port}}}
queues:
  work: {{visibility_timeout: 60}}
  sink: {{}}
functions:
  consumer:
    handler: consumer.handler
    code: ./fn
    timeout: 10
    environment: {{BENCH_OUT: '{out}'}}
    events:
      - sqs: {{queue: work, batch_size: 10}}
""")
    return out


def main(reps: int = 1, n_latency: int = 200, n_throughput: int = 2000) -> list[dict]:
    import boto3

    latency = Figure("SendMessage -> handler start", "ms", goal="p50 ≤ 5 ms")
    rate = Figure("SendMessageBatch -> all handled (batch 10)", "msg/s", goal="(information)")
    for _ in range(reps):
        with running_daemon("lambdad-bench-sqs-", project) as (port, out):
            sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                               aws_access_key_id="any", aws_secret_access_key="any")
            work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
            sink = sqs.get_queue_url(QueueName="sink")["QueueUrl"]
            for i in range(20):  # warm-up: client, connection, worker
                sqs.send_message(QueueUrl=work, MessageBody=f"warm-{i}")
            while len(json_lines(out)) < 20:
                time.sleep(0.01)
            latency.add(*send_to_handler_ms(lambda i, sqs=sqs, work=work: sqs.send_message(
                QueueUrl=work, MessageBody=f"lat-{i}"), out, n_latency))

            def send_all(url: str, sqs=sqs) -> float:
                t0 = time.perf_counter()
                for start in range(0, n_throughput, 10):
                    sqs.send_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(i), "MessageBody": f"m-{start + i}"} for i in range(10)])
                return time.perf_counter() - t0

            enqueue_s = send_all(sink)
            before = len(json_lines(out))
            t0 = time.perf_counter()
            send_all(work)
            while len(json_lines(out)) < before + n_throughput:
                time.sleep(0.005)
            total_s = time.perf_counter() - t0
            rate.add([n_throughput / total_s], [n_throughput / enqueue_s])
    return report([latency, rate], "sqs")


if __name__ == "__main__":
    main(int(os.environ.get("BENCH_REPS", "1")))
