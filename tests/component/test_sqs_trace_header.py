"""AWSTraceHeader: the one message system attribute SQS takes, checked, kept, answered with its MD5,
received, and delivered in the mapping's records; the X-Amzn-Trace-Id header of a send stands for
it (what a handler's boto3 sends), and the attribute overrides the header. The batch's invocation
starts a new trace, as Lambda's does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from lambdad import tracing
from lambdad.logs import LogBook
from lambdad.manifest.model import Function, Manifest, Queue, SqsTrigger
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.services import sqs_rules
from lambdad.services.queues import Queues
from lambdad.store import Store
from lambdad.triggers.mappings.sqs import SqsPoller
from tests.component.protocol_apis import HOST, URL, Apis
from tests.component.twins import FakeSpawner, InlineExecutor
from tests.helpers import FakeClock

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
OTHER = "Root=1-6553f100-000102030405060708090a0b;Parent=0c0d0e0f10111213;Sampled=1"


@pytest.fixture
def apis(tmp_path: Path):
    a = Apis(tmp_path)
    yield a
    a.close()


def send(apis: Apis, operation: str, request: dict, header: str | None = None) -> tuple[int, dict]:
    status, _, raw = asyncio.run(apis.sqs.handle(operation, json.dumps(request).encode(), HOST, header))
    return status, json.loads(raw)


def system(value: str, data_type: str = "String") -> dict:
    return {"AWSTraceHeader": {"DataType": data_type, "StringValue": value}}


def expected_md5(value: str) -> str:
    """MD5OfMessageSystemAttributes as the AWS SDKs check it: length-prefixed name, type, then the
    transport byte 1 and the length-prefixed value."""
    out = b""
    for part in (b"AWSTraceHeader", b"String"):
        out += struct.pack("!I", len(part)) + part
    out += b"\x01" + struct.pack("!I", len(value.encode())) + value.encode()
    return hashlib.md5(out).hexdigest()


def received(apis: Apis, **params) -> list[dict]:
    status, doc = send(apis, "ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": 10, **params})
    assert status == 200
    return doc.get("Messages", [])


def test_a_trace_header_is_kept_answered_with_its_md5_and_received(apis: Apis):
    status, doc = send(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": "b", "MessageSystemAttributes":
                                             system(TRACE)})
    assert status == 200 and doc["MD5OfMessageSystemAttributes"] == expected_md5(TRACE)
    assert "MD5OfMessageAttributes" not in doc
    (message,) = received(apis, AttributeNames=["All"], VisibilityTimeout=0)
    assert message["Attributes"]["AWSTraceHeader"] == TRACE
    (message,) = received(apis, MessageSystemAttributeNames=["AWSTraceHeader"], VisibilityTimeout=0)
    assert message["Attributes"] == {"AWSTraceHeader": TRACE}
    (message,) = received(apis, VisibilityTimeout=0)
    assert "Attributes" not in message


def test_the_request_header_stands_for_every_message_and_the_attribute_overrides_it(apis: Apis):
    status, doc = send(apis, "SendMessageBatch", {"QueueUrl": URL, "Entries": [
        {"Id": "a", "MessageBody": "a"},
        {"Id": "b", "MessageBody": "b", "MessageSystemAttributes": system(OTHER)}]}, header=TRACE)
    assert status == 200 and not doc["Failed"]
    by_id = {e["Id"]: e for e in doc["Successful"]}
    assert "MD5OfMessageSystemAttributes" not in by_id["a"]
    assert by_id["b"]["MD5OfMessageSystemAttributes"] == expected_md5(OTHER)
    send(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": "c"}, header="not a trace header")
    traces = {m["Body"]: m.get("Attributes", {}).get("AWSTraceHeader")
              for m in received(apis, AttributeNames=["AWSTraceHeader"])}
    assert traces == {"a": TRACE, "b": OTHER, "c": None}


@pytest.mark.parametrize(("attributes", "reason"), [
    ({"Other": {"DataType": "String", "StringValue": TRACE}}, "name 'Other' is invalid"),
    (system(TRACE, "Number"), "must have the DataType String"),
    ({"AWSTraceHeader": {"DataType": "String", "BinaryValue": "eA=="}}, "must hold an X-Ray trace header"),
    (system("Root=nope"), "must hold an X-Ray trace header"),
    ("text", "must be an object"),
])
def test_a_bad_system_attribute_is_refused_and_nothing_is_stored(apis: Apis, attributes, reason):
    status, doc = send(apis, "SendMessage", {"QueueUrl": URL, "MessageBody": "b", "MessageSystemAttributes":
                                             attributes})
    assert (status, doc["__type"]) == (400, "com.amazonaws.sqs#InvalidParameterValue")
    assert reason in doc["message"] and apis.rows("messages") == 0


def test_the_mappings_records_carry_the_trace_header_and_the_invocation_continues_it(tmp_path: Path):
    clock = FakeClock()
    requests = []

    def run(req):
        requests.append(req)
        return Outcome.success, b"null"

    queue = Queue("q")
    fn = Function("f", "app.handler", tmp_path, "python3", events=(SqsTrigger("q", batch_size=10),))
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": fn}, queues={"q": queue})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock, {}, spawn_override=FakeSpawner(run))
    store = Store(":memory:")
    try:
        store.write(lambda tx: sqs_rules.send(tx, queue, b"traced", clock.time(), trace_header=TRACE))
        store.write(lambda tx: sqs_rules.send(tx, queue, b"plain", clock.time()))
        SqsPoller(manifest, Queues(store, clock, manifest), functions, clock, InlineExecutor()).step(clock.time())
    finally:
        functions.close()
        store.close()
    (req,) = requests
    event = SqsModel.model_validate(json.loads(req.payload))
    by_body = {r.body: r.attributes.AWSTraceHeader for r in event.Records}
    assert by_body == {"traced": TRACE, "plain": None}
    # Lambda starts a new trace for an SQS-triggered invocation; the lineage is the shortest chain's
    assert tracing.root_of(req.trace_id) not in (None, tracing.root_of(TRACE))
    assert tracing.chain_count(req.trace_id, "f") == 0
