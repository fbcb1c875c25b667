"""The SQS and Kinesis APIs in-process over a real store in tmp_path: what the component and fuzz
tests of both protocols share."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lambdad.api.kinesis import KinesisApi
from lambdad.api.sqs_json import SqsApi
from lambdad.clock import SYSTEM_CLOCK
from lambdad.manifest.model import Manifest, Queue, Stream
from lambdad.services.queues import Queues
from lambdad.services.streams import Streams
from lambdad.store import Store
from tests.component.twins import InlineExecutor

HOST = "127.0.0.1:9000"
ACCOUNT = "111122223333"
QUEUES = {q.name: q for q in (Queue("jobs"), Queue("jobs.fifo", fifo=True), Queue("cbd.fifo", fifo=True,
                                                                                  content_based_deduplication=True))}
URL = f"http://{HOST}/{ACCOUNT}/jobs"
FIFO_URL = f"http://{HOST}/{ACCOUNT}/jobs.fifo"


class Apis:
    def __init__(self, tmp_path: Path) -> None:
        manifest = Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account=ACCOUNT, functions={},
                            queues=dict(QUEUES), streams={"clicks": Stream("clicks", shards=2)})
        self.store = Store(tmp_path / "state.db")
        self.sqs = SqsApi(Queues(self.store, SYSTEM_CLOCK, manifest), InlineExecutor())
        self.kinesis = KinesisApi(manifest, Streams(self.store, SYSTEM_CLOCK), InlineExecutor(), 1_700_000_000.0)

    def call_sqs(self, operation: str, request: object) -> tuple[int, dict[str, str], dict]:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        status, headers, raw = asyncio.run(self.sqs.handle(operation, body, HOST))
        return status, dict(headers), json.loads(raw)

    def call_kinesis(self, operation: str, request: object) -> tuple[int, dict[str, str], dict]:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        status, headers, raw = asyncio.run(self.kinesis.handle(operation, body))
        return status, dict(headers), json.loads(raw)

    def rows(self, table: str) -> int:
        with self.store.reading() as tx:
            return tx.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def close(self) -> None:
        self.store.close()
