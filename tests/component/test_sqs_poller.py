"""The SQS event source mapping on a fake clock with in-memory environments: batches, deletes,
visibility, redrive, partial batch responses, FIFO order, batching windows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from lambdad.logs import LogBook
from lambdad.manifest.model import Function, Manifest, Queue, SqsTrigger
from lambdad.payloads.sqs import sqs_event
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.services import sqs_rules
from lambdad.services.queues import Queues
from lambdad.store import Store, queues
from lambdad.triggers.mappings.sqs import SqsPoller
from tests.component.twins import DeferredExecutor, FakeSpawner, InlineExecutor
from tests.helpers import FakeClock

ERROR = b'{"errorMessage": "x", "errorType": "ValueError", "requestId": "", "stackTrace": []}'




class World:
    def __init__(self, tmp_path: Path, queue: Queue, trigger: SqsTrigger, reply=None, reserved=None) -> None:
        self.clock = FakeClock()
        self.events: list[dict] = []
        self.reply = reply or (lambda event: (Outcome.success, b"null"))

        def run(req):
            event = json.loads(req.payload)
            self.events.append(event)
            return self.reply(event)

        fn = Function("f", "app.handler", tmp_path, "python3", timeout_s=3, events=(trigger,),
                      reserved_concurrency=reserved)
        dlq = Queue("dlq", fifo=queue.fifo) if not queue.fifo else Queue("dlq.fifo", fifo=True)
        self.manifest = Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account="111122223333",
                                 functions={"f": fn}, queues={queue.name: queue, dlq.name: dlq})
        self.queue = queue
        self.functions = Functions(self.manifest, LogBook(tmp_path / "logs"), self.clock, {},
                                   spawn_override=FakeSpawner(run))
        self.store = Store(":memory:")
        self.poller = SqsPoller(self.manifest, Queues(self.store, self.clock, self.manifest), self.functions, self.clock,
                                InlineExecutor())

    def send(self, *bodies: str, group: str | None = None) -> list[str]:
        return [self.store.write(lambda tx, b=b: sqs_rules.send(
            tx, self.queue, b.encode(), self.clock.time(), group=group, dedup_id=b if self.queue.fifo else None)
        ).message_id for b in bodies]

    def step(self, advance: float = 0.0) -> float:
        self.clock.advance(advance)
        return self.poller.step(self.clock.time())

    def left(self, queue: str | None = None) -> list[str]:
        with self.store.reading() as tx:
            return [m.body.decode() for m in queues.peek(tx, queue or self.queue.name, 1000)]

    def bodies(self) -> list[list[str]]:
        return [[r["body"] for r in e["Records"]] for e in self.events]

    def close(self) -> None:
        self.functions.close()
        self.store.close()


STANDARD = Queue("q", visibility_timeout_s=30)


def make_world(tmp_path, queue=STANDARD, reply=None, reserved=None, **trigger) -> World:
    return World(tmp_path, queue, SqsTrigger(queue.name, **trigger), reply, reserved)


def test_a_successful_batch_is_deleted_and_shaped_as_lambdas(tmp_path: Path):
    w = make_world(tmp_path, batch_size=2)
    ids = w.send("a", "b", "c")
    w.step()
    assert w.bodies() == [["a", "b"], ["c"]] and w.left() == []
    SqsModel(**w.events[0])
    record = w.events[0]["Records"][0]
    assert record["messageId"] == ids[0] and record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:eu-west-1:111122223333:q" and record["awsRegion"] == "eu-west-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    w.close()


def test_a_failed_batch_returns_after_the_visibility_timeout_then_goes_to_the_dlq(tmp_path: Path):
    queue = Queue("q", visibility_timeout_s=30, redrive_dead_letter_queue="dlq", redrive_max_receive_count=2)
    w = make_world(tmp_path, queue, reply=lambda e: (Outcome.error, ERROR))
    w.send("poison")
    w.step()
    w.step(29)
    assert len(w.events) == 1 and w.left() == ["poison"]  # still invisible
    w.step(1)
    assert len(w.events) == 2 and w.events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    w.step(30)  # a third receive would exceed maxReceiveCount 2: redriven instead
    assert len(w.events) == 2 and w.left() == [] and w.left("dlq") == ["poison"]
    with w.store.reading() as tx:
        (dead,) = queues.peek(tx, "dlq", 10)
    source = "arn:aws:sqs:eu-west-1:111122223333:q"
    assert dead.system_attributes()["DeadLetterQueueSourceArn"] == source  # what a mapping on the DLQ gets
    event = SqsModel(**json.loads(sqs_event([replace(dead, receipt="r")], source + "-dlq", "eu-west-1")))
    assert event.Records[0].attributes.DeadLetterQueueSourceArn == source
    w.close()


@pytest.mark.parametrize(
    ("answer", "left"),
    [
        (lambda ids: {"batchItemFailures": [{"itemIdentifier": ids[1]}]}, ["b"]),
        (lambda ids: {"batchItemFailures": []}, []),
        (lambda ids: {"batchItemFailures": None}, []),
        (lambda ids: None, []),
        (lambda ids: {"other": 1}, []),
        (lambda ids: {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, ["a", "b", "c"]),
        (lambda ids: {"batchItemFailures": [{"itemIdentifier": ""}]}, ["a", "b", "c"]),
        (lambda ids: {"batchItemFailures": [{"id": ids[0]}]}, ["a", "b", "c"]),
    ],
)
def test_partial_batch_responses(tmp_path: Path, answer, left):
    w = make_world(tmp_path, report_batch_item_failures=True,
                   reply=lambda e: (Outcome.success, json.dumps(answer([r["messageId"] for r in e["Records"]])).encode()))
    w.send("a", "b", "c")
    w.step()
    assert w.left() == left
    w.close()


def test_partial_responses_are_ignored_unless_enabled(tmp_path: Path):
    w = make_world(tmp_path, reply=lambda e: (Outcome.success, json.dumps(
        {"batchItemFailures": [{"itemIdentifier": e["Records"][0]["messageId"]}]}).encode()))
    w.send("a")
    w.step()
    assert w.left() == []
    w.close()


def test_fifo_groups_stay_in_order_across_failures(tmp_path: Path):
    fifo = Queue("q.fifo", fifo=True, visibility_timeout_s=30)
    failing = {"a2"}

    def reply(event):
        bodies = [r["body"] for r in event["Records"]]
        bad = [r["messageId"] for r in event["Records"] if r["body"] in failing]
        failing.clear()
        return Outcome.success, json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in bad]}).encode() \
            if bodies else b"null"

    w = make_world(tmp_path, fifo, reply=reply, report_batch_item_failures=True, batch_size=10)
    w.send("a1", "a2", "a3", group="a")
    w.send("b1", group="b")
    w.step()
    assert w.bodies() == [["a1", "a2", "a3", "b1"]]
    assert w.left() == ["a2", "a3"]  # a3 stays behind the failed a2
    w.step(30)
    assert w.bodies()[1] == ["a2", "a3"] and w.left() == []
    assert [r["attributes"]["MessageGroupId"] for r in w.events[0]["Records"]] == ["a", "a", "a", "b"]
    SqsModel(**w.events[0])
    w.close()


def test_a_batching_window_gathers_until_full_or_due(tmp_path: Path):
    w = make_world(tmp_path, batch_size=3, maximum_batching_window_s=5)
    w.send("a", "b")
    w.step()
    assert w.events == []  # waits for more
    w.step(4)
    assert w.events == []
    w.step(1)
    assert w.bodies() == [["a", "b"]]
    w.send("c", "d", "e")
    w.step()
    assert w.bodies()[1] == ["c", "d", "e"]  # a full batch goes at once
    w.close()


def test_zero_reserved_concurrency_does_not_poll(tmp_path: Path):
    w = make_world(tmp_path, reserved=0)
    w.send("a")
    w.step()
    assert w.events == [] and w.left() == ["a"]
    w.close()




def test_a_batch_that_waited_past_its_visibility_timeout_is_not_delivered(tmp_path: Path):
    w = make_world(tmp_path)
    deferred = DeferredExecutor()
    w.poller = SqsPoller(w.manifest, Queues(w.store, w.clock, w.manifest), w.functions, w.clock, deferred)
    w.send("a")
    w.step()
    w.clock.advance(30)  # 30 s visibility: visible again before a thread took the batch
    deferred.run_all()
    assert w.events == []  # not run: it may already be someone else's
    w.step()
    deferred.run_all()
    assert w.bodies() == [["a"]] and w.left() == []
    w.close()


def test_a_batch_that_waited_is_held_for_a_whole_invocation_then_delivered(tmp_path: Path):
    hidden: list[int] = []

    def reply(event):  # while it runs, the message stays invisible for a whole invocation (3 s) from its start
        with w.store.reading() as tx:
            hidden.append(sqs_rules.visible_count(tx, w.queue, w.clock.time() + 2.9, 10))
        return Outcome.success, b"null"

    w = make_world(tmp_path, reply=reply)
    deferred = DeferredExecutor()
    w.poller = SqsPoller(w.manifest, Queues(w.store, w.clock, w.manifest), w.functions, w.clock, deferred)
    w.send("a")
    w.step()
    w.clock.advance(28)  # 30 s visibility, 3 s function timeout: 2 s left, less than an invocation
    deferred.run_all()
    assert w.bodies() == [["a"]] and w.left() == [] and hidden == [0]
    w.close()


def test_a_visibility_timeout_equal_to_the_function_timeout_delivers(tmp_path: Path):
    """Lambda allows it: every batch is delivered, none reaches the dead-letter queue unhandled."""
    queue = Queue("q", visibility_timeout_s=3, redrive_dead_letter_queue="dlq", redrive_max_receive_count=2)
    w = make_world(tmp_path, queue)  # the function's timeout is 3 s too
    deferred = DeferredExecutor()
    w.poller = SqsPoller(w.manifest, Queues(w.store, w.clock, w.manifest), w.functions, w.clock, deferred)
    w.send("a", "b")
    for _ in range(3):
        w.step()
        w.clock.advance(0.01)  # the moment a pool thread takes to start the batch
        deferred.run_all()
        w.clock.advance(3)
    assert sorted(b for batch in w.bodies() for b in batch) == ["a", "b"]
    assert w.left() == [] and w.left("dlq") == []
    w.close()


def test_an_attribute_no_event_can_carry_does_not_block_its_neighbours(tmp_path: Path):
    """A store written before sends were checked may hold one: its message is delivered without
    it, the others as they are, and the function's log says so once."""
    w = make_world(tmp_path, batch_size=10)
    good = {"Kind": {"DataType": "String", "StringValue": "order"}}
    bad = {"Blob": {"DataType": "Binary", "BinaryValue": "not base64!"}, "Odd": {"DataType": 7, "StringValue": "x"},
           "Half": {"DataType": "String", "StringValue": "\ud800"}, "Kind": {"DataType": "String", "StringValue": "kept"}}
    for body, attributes in (("before", good), ("poison", bad), ("after", {})):
        w.store.write(lambda tx, b=body, a=attributes: sqs_rules.send(tx, w.queue, b.encode(), w.clock.time(), a))
    w.step()
    assert w.bodies() == [["before", "poison", "after"]] and w.left() == []
    records = w.events[0]["Records"]
    SqsModel(**w.events[0])
    assert list(records[1]["messageAttributes"]) == ["Kind"] and records[1]["messageAttributes"]["Kind"][
        "stringValue"] == "kept"
    assert records[0]["messageAttributes"]["Kind"]["stringValue"] == "order"
    w.functions.logbook.flush()
    log = (tmp_path / "logs" / "f.log").read_text()
    assert log.count("Blob, Odd, Half are not valid SQS message attributes") == 1
    w.close()


def test_a_batch_the_function_never_saw_is_visible_again_at_once(tmp_path: Path):
    w = make_world(tmp_path)
    w.send("a")
    w.functions.stop_accepting()
    w.step()  # ShuttingDown: not delivered
    with w.store.reading() as tx:
        assert queues.depths(tx, w.clock.time())["q"].visible == 1
    w.close()


def test_a_failed_batch_is_the_mappings_last_error(tmp_path: Path):
    """`lambdad status` shows it: the daemon writes it into daemon.json when it changes."""
    w = make_world(tmp_path, reply=lambda event: (Outcome.error, ERROR))
    changes: list[int] = []
    w.poller._on_error = lambda: changes.append(1)
    assert w.poller.last_errors() == {}
    w.send("a")
    w.step()
    w.step(31.0)  # the same failure again, after the visibility timeout: moves `at`, nothing to rewrite
    errors = w.poller.last_errors()
    assert list(errors) == ["f/q"] and errors["f/q"]["at"] == w.clock.time()
    assert errors["f/q"]["error"].startswith("batch of 1 failed (")
    assert errors["f/q"]["error"].endswith("); its messages return after the visibility timeout")
    assert len(changes) == 1
    w.close()
