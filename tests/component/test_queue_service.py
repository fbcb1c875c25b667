"""The queues service every face calls: one set of checks for `lambdad queue send` and SendMessage,
its clock, its wake-ups after a send, a reload, and giving messages up to the dead-letter queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.cli import main
from lambdad.manifest.model import Manifest, Queue
from lambdad.services.queues import Queues
from lambdad.sqs_vocabulary import DLQ_SOURCE_ARN, QueueDepth, QueueError, Sent
from lambdad.statedir import StateDir
from lambdad.store import Store, queues
from tests.component.protocol_apis import FIFO_URL, URL, Apis
from tests.helpers import FakeClock

MANIFEST = """\
version: 1
queues:
  jobs: {}
  jobs.fifo: {}
functions:
  worker: {handler: app.handler, code: .}
"""

#: (the CLI's arguments after `queue send`, the same message as a SendMessage request)
REFUSED = {
    "a FIFO message without a group": (["jobs.fifo", "b", "--dedup-id", "d"],
                                       {"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageDeduplicationId": "d"}),
    "a FIFO message with a delay": (["jobs.fifo", "b", "--group", "g", "--dedup-id", "d", "--delay", "5"],
                                    {"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g",
                                     "MessageDeduplicationId": "d", "DelaySeconds": 5}),
    "a FIFO message without a deduplication id": (["jobs.fifo", "b", "--group", "g"],
                                                  {"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "g"}),
    "a deduplication id on a standard queue": (["jobs", "b", "--dedup-id", "d"],
                                               {"QueueUrl": URL, "MessageBody": "b", "MessageDeduplicationId": "d"}),
    "a delay past 900 seconds": (["jobs", "b", "--delay", "901"],
                                 {"QueueUrl": URL, "MessageBody": "b", "DelaySeconds": 901}),
    "an empty body": (["jobs", ""], {"QueueUrl": URL, "MessageBody": ""}),
    "a reserved attribute name": (["jobs", "b", "--attr", "AWS.trace=x"],
                                  {"QueueUrl": URL, "MessageBody": "b",
                                   "MessageAttributes": {"AWS.trace": {"DataType": "String", "StringValue": "x"}}}),
    "a bad group id": (["jobs.fifo", "b", "--group", "a b", "--dedup-id", "d"],
                       {"QueueUrl": FIFO_URL, "MessageBody": "b", "MessageGroupId": "a b",
                        "MessageDeduplicationId": "d"}),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    StateDir(tmp_path / ".lambdad").create()
    return tmp_path


@pytest.mark.parametrize("case", list(REFUSED))
def test_queue_send_and_send_message_refuse_a_message_alike(project: Path, case: str,
                                                            capsys: pytest.CaptureFixture):
    argv, request = REFUSED[case]
    (project / "api").mkdir()
    apis = Apis(project / "api")
    try:
        status, _, doc = apis.call_sqs("SendMessage", request)
    finally:
        apis.close()
    assert status == 400
    code = doc["__type"].rsplit("#", 1)[1]
    assert main(["queue", "send", *argv]) != 0
    assert capsys.readouterr().err.strip() == f"lambdad: {code}: {doc['message']}"
    assert main(["queue", "list", "--json"]) == 0
    assert "jobs" in capsys.readouterr().out  # (the CLI still works) and nothing was sent:
    store = Store.in_state_folder(project / ".lambdad")
    try:
        with store.reading() as tx:
            assert queues.depths(tx, 0) == {}
    finally:
        store.close()


class World:
    def __init__(self, *extra: Queue) -> None:
        self.clock = FakeClock()
        self.store = Store(":memory:")
        self.woken = 0
        all_queues = (Queue("q", visibility_timeout_s=30, redrive_dead_letter_queue="dlq"), Queue("dlq"),
                      Queue("f.fifo", fifo=True), *extra)
        self.manifest = Manifest(Path("lambdad.yaml"), region="eu-west-1", account="111122223333", functions={},
                                 queues={q.name: q for q in all_queues})
        self.queues = Queues(self.store, self.clock, self.manifest, on_sent=self.wake)

    def wake(self) -> None:
        self.woken += 1

    def message(self, queue: Queue, body: str = "b", **kw):
        return self.queues.message(queue, body, **kw)


@pytest.fixture
def world():
    w = World()
    yield w
    w.store.close()


def test_a_send_wakes_the_pollers_and_a_refused_one_does_not(world: World):
    q, fifo = world.queues.queue("q"), world.queues.queue("f.fifo")
    world.queues.send(q, world.message(q))
    assert world.woken == 1
    with pytest.raises(QueueError, match="MessageGroupId"):
        world.queues.send(fifo, world.message(fifo, dedup_id="d"))
    assert world.woken == 1
    results = world.queues.send_batch(fifo, [world.message(fifo, dedup_id="d"), world.message(fifo, group="g",
                                                                                               dedup_id="d")])
    assert [type(r) for r in results] == [QueueError, Sent] and world.woken == 2
    assert world.queues.send_batch(fifo, [world.message(fifo, dedup_id="x")])[0].code == "MissingParameter"
    assert world.woken == 2  # nothing sent: nobody woken


def test_the_service_keeps_time_by_its_clock(world: World):
    q = world.queues.queue("q")
    world.queues.send(q, world.message(q, delay_s=10))
    assert world.queues.depth("q") == QueueDepth(delayed=1)
    assert world.queues.receive(q, 10) == []
    world.clock.advance(10)
    (m,) = world.queues.receive(q, 10)
    assert world.queues.depth("q") == QueueDepth(in_flight=1)
    assert m.sent_at == world.clock.time() - 10
    world.clock.advance(30)  # the visibility timeout has passed
    assert world.queues.visible_count(q, 10) == 1


def test_an_unknown_queue_is_sqs_s_error_and_a_reload_makes_one_known(world: World):
    with pytest.raises(QueueError) as e:
        world.queues.queue("new")
    assert (e.value.code, str(e.value)) == ("QueueDoesNotExist", "The specified queue does not exist.")
    world.queues.apply(World(Queue("new")).manifest)
    assert world.queues.queue("new") == Queue("new")


def test_given_up_messages_go_to_the_dead_letter_queue_marked_with_their_source(world: World):
    q, dlq = world.queues.queue("q"), world.queues.queue("dlq")
    world.queues.send(q, world.message(q, "one"))
    batch = world.queues.receive(q, 10)
    assert world.queues.dead_letter(q, batch) == dlq
    (moved,) = world.queues.peek(dlq, 10)
    assert moved.body == b"one" and moved.system[DLQ_SOURCE_ARN] == "arn:aws:sqs:eu-west-1:111122223333:q"
    world.queues.send(dlq, world.message(dlq, "two"))
    got = world.queues.receive(dlq, 10)
    assert [m.body for m in got] == [b"one", b"two"]
    assert world.queues.dead_letter(dlq, got[1:]) is None  # no dead-letter queue of its own: deleted
    assert [m.body for m in world.queues.peek(dlq, 10)] == [b"one"]


def test_visibility_changes_keep_only_the_messages_still_in_flight(world: World):
    q = world.queues.queue("q")
    for body in ("a", "b"):
        world.queues.send(q, world.message(q, body))
    a, b = world.queues.receive(q, 10)
    world.queues.change_visibility(q, b.receipt, 0)  # b is visible again: not ours to hold
    assert world.queues.set_visibility(q, [a, b], 60) == [a]
    with pytest.raises(QueueError, match="not in flight"):
        world.queues.change_visibility(q, b.receipt, 10)
