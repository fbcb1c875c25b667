"""Local queues on a fake clock: SQS's visibility, receive counts, redrive, retention, delays, and
FIFO order, group holding and deduplication."""

from __future__ import annotations

import hashlib

import pytest

from lambdad import sqs_vocabulary
from lambdad.manifest.model import Queue
from lambdad.services import sqs_rules
from lambdad.sqs_vocabulary import QueueError
from lambdad.store import Store, queues

T0 = 1_700_000_000.0
Q = Queue("q", visibility_timeout_s=30)
DLQ = Queue("dlq")
REDRIVEN = Queue("q", visibility_timeout_s=30, redrive_dead_letter_queue="dlq", redrive_max_receive_count=2)
FIFO = Queue("f.fifo", fifo=True, visibility_timeout_s=30)
FIFO_CBD = Queue("c.fifo", fifo=True, content_based_deduplication=True)


@pytest.fixture
def tx():
    store = Store(":memory:")
    with store.transaction() as conn:
        yield conn
    store.close()


def bodies(messages) -> list[bytes]:
    return [m.body for m in messages]


def test_a_received_message_is_invisible_for_the_timeout_and_counted(tx):
    first = sqs_rules.send(tx, Q, b"one", T0, {"K": {"DataType": "String", "StringValue": "v"}}).message_id
    sqs_rules.send(tx, Q, b"two", T0)
    sqs_rules.send(tx, Queue("other"), b"x", T0)
    (got,) = sqs_rules.receive(tx, Q, T0 + 1, limit=1)
    assert (got.message_id, got.body, got.receive_count, got.first_receive_at) == (first, b"one", 1, T0 + 1)
    assert got.attributes == {"K": {"DataType": "String", "StringValue": "v"}}
    assert queues.depths(tx, T0 + 1)["q"] == queues.QueueDepth(visible=1, in_flight=1, delayed=0)
    assert bodies(sqs_rules.receive(tx, Q, T0 + 2, 10)) == [b"two"]
    assert sqs_rules.receive(tx, Q, T0 + 30.9, 10) == []  # both in flight
    again = sqs_rules.receive(tx, Q, T0 + 31, 10)
    assert [(m.body, m.receive_count, m.first_receive_at) for m in again] == [(b"one", 2, T0 + 1)]
    assert again[0].receipt != got.receipt  # each receive has its own handle


def test_delete_needs_the_latest_receipt_handle(tx):
    sqs_rules.send(tx, Q, b"one", T0)
    (old,) = sqs_rules.receive(tx, Q, T0, 1)
    (new,) = sqs_rules.receive(tx, Q, T0 + 31, 1)
    assert not queues.delete(tx, "q", old.receipt)
    assert queues.delete(tx, "q", new.receipt)
    assert queues.peek(tx, "q", 10) == []


def test_change_visibility(tx):
    sqs_rules.send(tx, Q, b"one", T0)
    (m,) = sqs_rules.receive(tx, Q, T0, 1)
    sqs_rules.change_visibility(tx, "q", m.receipt, 0, T0 + 1)  # give it back at once
    (again,) = sqs_rules.receive(tx, Q, T0 + 1, 1)
    sqs_rules.change_visibility(tx, "q", again.receipt, 100, T0 + 2)
    assert sqs_rules.receive(tx, Q, T0 + 50, 1) == []
    assert bodies(sqs_rules.receive(tx, Q, T0 + 102, 1)) == [b"one"]
    with pytest.raises(QueueError) as e:
        sqs_rules.change_visibility(tx, "q", again.receipt, 10, T0 + 103)  # stale handle
    assert e.value.code == "MessageNotInflight"


def test_delays_per_message_and_per_queue(tx):
    sqs_rules.send(tx, Q, b"later", T0, delay_s=10)
    sqs_rules.send(tx, Queue("slow", delay_s=5), b"queue delay", T0)
    assert sqs_rules.receive(tx, Q, T0 + 5, 10) == []
    assert queues.depths(tx, T0 + 5)["q"] == queues.QueueDepth(0, 0, 1)
    assert bodies(sqs_rules.receive(tx, Q, T0 + 10, 10)) == [b"later"]
    assert sqs_rules.receive(tx, Queue("slow", delay_s=5), T0 + 4, 10) == []
    assert bodies(sqs_rules.receive(tx, Queue("slow", delay_s=5), T0 + 5, 10)) == [b"queue delay"]
    with pytest.raises(QueueError):
        sqs_rules.send(tx, Q, b"x", T0, delay_s=901)


def test_messages_older_than_the_retention_are_dropped(tx):
    short = Queue("q", message_retention_s=60)
    sqs_rules.send(tx, short, b"old", T0)
    sqs_rules.send(tx, short, b"new", T0 + 30)
    assert bodies(sqs_rules.receive(tx, short, T0 + 60, 10)) == [b"new"]  # never handed out once too old
    assert sqs_rules.expire(tx, short, T0 + 60) == 1  # and dropped by the periodic sweep
    assert [m.body for m in queues.peek(tx, "q", 10)] == [b"new"]


def test_past_max_receive_count_a_message_moves_to_the_dead_letter_queue(tx):
    mid = sqs_rules.send(tx, REDRIVEN, b"poison", T0).message_id
    for i in range(2):  # received twice (maxReceiveCount 2), never deleted
        (m,) = sqs_rules.receive(tx, REDRIVEN, T0 + 31 * i, 1, dead_letter_queue=DLQ)
        assert m.receive_count == i + 1
    assert sqs_rules.receive(tx, REDRIVEN, T0 + 62, 1, dead_letter_queue=DLQ) == []  # the third receive moves it
    (dead,) = sqs_rules.receive(tx, DLQ, T0 + 63, 1)
    assert (dead.message_id, dead.body, dead.receive_count, dead.sent_at) == (mid, b"poison", 1, T0)
    assert "DeadLetterQueueSourceArn" not in dead.system_attributes()  # (no source ARN given)


SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:q"


def test_a_redriven_message_names_its_source_queue_and_keeps_other_system_attributes(tx):
    sqs_rules.send(tx, REDRIVEN, b"poison", T0)
    tx.execute("UPDATE messages SET system_attributes = ?", ('{"AWSTraceHeader": "Root=1-abc"}',))
    for i in range(3):
        sqs_rules.receive(tx, REDRIVEN, T0 + 31 * i, 1, dead_letter_queue=DLQ, source_arn=SOURCE_ARN)
    (dead,) = sqs_rules.receive(tx, DLQ, T0 + 100, 1)
    assert dead.system_attributes()["DeadLetterQueueSourceArn"] == SOURCE_ARN
    assert dead.system == {"AWSTraceHeader": "Root=1-abc", "DeadLetterQueueSourceArn": SOURCE_ARN}
    sqs_rules.send(tx, Q, b"fresh", T0)
    (fresh,) = sqs_rules.receive(tx, Q, T0 + 100, 1)
    assert "DeadLetterQueueSourceArn" not in fresh.system_attributes()


def test_into_a_fifo_dead_letter_queue_the_deduplication_id_becomes_the_message_id(tx):
    source = Queue("s.fifo", fifo=True, visibility_timeout_s=0, redrive_dead_letter_queue="d.fifo",
                   redrive_max_receive_count=1)
    dead = Queue("d.fifo", fifo=True)
    ids = [sqs_rules.send(tx, source, b"m%d" % i, T0 + i, group="g", dedup_id=f"same-{i}").message_id for i in range(2)]
    for _ in range(3):
        sqs_rules.receive(tx, source, T0 + 10, 10, dead_letter_queue=dead, source_arn=SOURCE_ARN)
    moved = sqs_rules.receive(tx, dead, T0 + 11, 10)
    assert [m.message_id for m in moved] == ids  # in order, with their ids and groups
    assert [m.system_attributes()["MessageDeduplicationId"] for m in moved] == ids
    assert [m.group_id for m in moved] == ["g", "g"]
    assert all(int(m.system_attributes()["SequenceNumber"]) > 0 for m in moved)


def test_fifo_sequence_numbers_grow_per_queue_and_dedup_answers_the_first_one(tx):
    sent = [sqs_rules.send(tx, FIFO, b"m%d" % i, T0, group="g", dedup_id=str(i)) for i in range(12)]
    numbers = [s.sequence_number for s in sent]
    assert all(len(n) == 20 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers, key=int) and len(set(numbers)) == 12
    again = sqs_rules.send(tx, FIFO, b"m0", T0 + 1, group="g", dedup_id="0")
    assert again.duplicate and again.sequence_number == numbers[0]
    assert sqs_rules.send(tx, Q, b"standard", T0).sequence_number is None


def test_fifo_keeps_each_groups_order_and_holds_a_group_in_flight(tx):
    for body, group in [(b"a1", "a"), (b"b1", "b"), (b"a2", "a"), (b"b2", "b"), (b"a3", "a")]:
        sqs_rules.send(tx, FIFO, body, T0, group=group, dedup_id=body.decode())
    first = sqs_rules.receive(tx, FIFO, T0, 2)
    assert bodies(first) == [b"a1", b"a2"]  # a group's messages together, in order
    assert bodies(sqs_rules.receive(tx, FIFO, T0, 10)) == [b"b1", b"b2"]  # group a is held while a1/a2 are out
    assert sqs_rules.receive(tx, FIFO, T0, 10) == []
    for m in first:
        queues.delete(tx, "f.fifo", m.receipt)
    assert bodies(sqs_rules.receive(tx, FIFO, T0 + 1, 10)) == [b"a3"]
    seqs = [m.sequence for m in first]
    assert seqs == sorted(seqs) and first[0].system_attributes()["SequenceNumber"] == sqs_vocabulary.sequence_number(seqs[0])
    assert first[0].system_attributes()["MessageGroupId"] == "a"


def test_a_failed_fifo_message_comes_back_first_in_its_group(tx):
    for n in range(3):
        sqs_rules.send(tx, FIFO, f"m{n}".encode(), T0, group="g", dedup_id=str(n))
    assert bodies(sqs_rules.receive(tx, FIFO, T0, 1)) == [b"m0"]
    assert sqs_rules.receive(tx, FIFO, T0 + 1, 10) == []  # m1 waits behind m0
    assert bodies(sqs_rules.receive(tx, FIFO, T0 + 31, 10)) == [b"m0", b"m1", b"m2"]


def test_fifo_deduplication_within_five_minutes(tx):
    a = sqs_rules.send(tx, FIFO, b"x", T0, group="g", dedup_id="d1")
    again = sqs_rules.send(tx, FIFO, b"x", T0 + 299, group="g", dedup_id="d1")
    assert again.duplicate and again.message_id == a.message_id
    later = sqs_rules.send(tx, FIFO, b"x", T0 + 300, group="g", dedup_id="d1")
    assert not later.duplicate and later.message_id != a.message_id
    assert len(queues.peek(tx, "f.fifo", 10)) == 2
    c = sqs_rules.send(tx, FIFO_CBD, b"body", T0, group="g")
    assert sqs_rules.send(tx, FIFO_CBD, b"body", T0 + 1, group="g").duplicate
    (m,) = sqs_rules.receive(tx, FIFO_CBD, T0 + 2, 10)
    assert m.message_id == c.message_id and m.dedup_id == hashlib.sha256(b"body").hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"dedup_id": "d"}, "MissingParameter"),
        ({"group": "g"}, "InvalidParameterValue"),  # no deduplication id and no content-based deduplication
        ({"group": "g", "dedup_id": "d", "delay_s": 5}, "InvalidParameterValue"),  # FIFO: only queue delays
    ],
)
def test_fifo_sends_sqs_refuses(tx, kwargs, code):
    with pytest.raises(QueueError) as e:
        sqs_rules.send(tx, FIFO, b"x", T0, **kwargs)
    assert e.value.code == code


def test_system_attributes_as_sqs_sends_them(tx):
    sqs_rules.send(tx, Q, b"x", T0)
    (m,) = sqs_rules.receive(tx, Q, T0 + 1.5, 1)
    assert m.system_attributes() == {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(T0 * 1000)),
                                     "SenderId": sqs_vocabulary.SENDER_ID,
                                     "ApproximateFirstReceiveTimestamp": str(int((T0 + 1.5) * 1000))}
    assert m.md5_of_body == hashlib.md5(b"x").hexdigest()


def test_a_fifo_group_is_held_while_any_of_its_messages_is_in_flight(tx):
    for n in range(2):
        sqs_rules.send(tx, FIFO, f"a{n}".encode(), T0, group="a", dedup_id=str(n))
    a0, _a1 = sqs_rules.receive(tx, FIFO, T0, 2)
    sqs_rules.change_visibility(tx, "f.fifo", a0.receipt, 0, T0 + 1)  # a0 back, a1 still in flight
    assert sqs_rules.receive(tx, FIFO, T0 + 1, 10) == []


def test_redriven_messages_join_the_end_of_the_dead_letter_queue(tx):
    sqs_rules.send(tx, DLQ, b"already there", T0)
    sqs_rules.send(tx, REDRIVEN, b"poison", T0)
    for i in range(3):
        sqs_rules.receive(tx, REDRIVEN, T0 + 31 * i, 1, dead_letter_queue=DLQ)
    assert bodies(sqs_rules.receive(tx, DLQ, T0 + 100, 10)) == [b"already there", b"poison"]


def test_a_byte_budget_leaves_the_rest_untouched(tx):
    for _ in range(5):
        sqs_rules.send(tx, REDRIVEN, b"x" * 1000, T0)
    got = sqs_rules.receive(tx, REDRIVEN, T0, 10, dead_letter_queue=DLQ, max_bytes=5000, per_message=100)
    assert len(got) == 2  # 2 x (2 x 1000 + 100) fits in 5,000, a third would not
    rest = sqs_rules.receive(tx, REDRIVEN, T0, 10, dead_letter_queue=DLQ)
    assert [m.receive_count for m in rest] == [1, 1, 1]  # the others were never counted as received
