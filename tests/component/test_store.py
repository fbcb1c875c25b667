"""The store's operations, run as one contract against an in-memory database and a file on disk."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lambdad.manifest.model import Queue
from lambdad.services import sqs_rules
from lambdad.store import Store, StoreError, deadletters, invocations, outbox, queues
from lambdad.store.deadletters import DeadLetter
from tests.helpers import wait_for

T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path: Path):
    s = Store(":memory:") if request.param == "memory" else Store.in_state_folder(tmp_path / "state")
    yield s
    s.close()


def put(store: Store, rid: str, function: str = "f", now: float = T0, payload: bytes = b"{}") -> None:
    with store.transaction() as tx:
        invocations.enqueue(tx, rid, function, payload, now)


class TestEvents:
    def test_claim_takes_due_events_oldest_first_and_leases_them(self, store):
        put(store, "a", now=T0)
        put(store, "b", now=T0 + 1)
        put(store, "c", now=T0 + 2, function="g")
        with store.transaction() as tx:
            got = invocations.claim(tx, ["f", "g"], T0 + 1.5, lease_s=30, limit=5)
        assert [e.request_id for e in got] == ["a", "b"]  # c is not due yet
        with store.transaction() as tx:
            assert invocations.claim(tx, ["f", "g"], T0 + 5, 30, 5)[0].request_id == "c"  # a and b are leased
            assert invocations.claim(tx, ["f", "g"], T0 + 5, 30, 5) == []

    def test_claim_respects_the_limit_and_the_functions(self, store):
        for i in range(5):
            put(store, f"r{i}")
        put(store, "other", function="g")
        with store.transaction() as tx:
            assert len(invocations.claim(tx, ["f"], T0, 30, 2)) == 2
            assert [e.request_id for e in invocations.claim(tx, ["g"], T0, 30, 10)] == ["other"]
            assert invocations.claim(tx, [], T0, 30, 10) == []

    def test_retry_later_counts_errors_and_throttles(self, store):
        put(store, "a")
        with store.transaction() as tx:
            (ev,) = invocations.claim(tx, ["f"], T0, 30, 1)
            invocations.retry_later(tx, ev.id, T0 + 60, invoked=True, error="ValueError", response=b'{"e": 1}')
        with store.transaction() as tx:
            assert invocations.claim(tx, ["f"], T0 + 59, 30, 1) == []
            (ev,) = invocations.claim(tx, ["f"], T0 + 60, 30, 1)
            assert (ev.invocations, ev.errors, ev.throttles, ev.last_error) == (1, 1, 0, "ValueError")
            assert ev.last_response == b'{"e": 1}'
            invocations.retry_later(tx, ev.id, T0 + 61, invoked=False, throttled=True)
        with store.transaction() as tx:
            (ev,) = invocations.claim(tx, ["f"], T0 + 61, 30, 1)
            assert (ev.invocations, ev.errors, ev.throttles, ev.last_error) == (1, 1, 1, "ValueError")

    def test_release_all_returns_every_lease(self, store):
        put(store, "a")
        put(store, "b")
        with store.transaction() as tx:
            invocations.claim(tx, ["f"], T0, 30, 2)
            assert invocations.release_all(tx) == 2
            assert len(invocations.claim(tx, ["f"], T0, 30, 5)) == 2

    def test_counts_and_stats(self, store):
        put(store, "a")
        put(store, "b")
        put(store, "c")
        with store.transaction() as tx:
            first, second = invocations.claim(tx, ["f"], T0, 30, 2)
            invocations.retry_later(tx, second.id, T0 + 5, invoked=True, error="E")
            invocations.delete(tx, first.id)
            invocations.bump_stats(tx, "f", succeeded=True)
            invocations.bump_stats(tx, "f", succeeded=False)
            invocations.bump_stats(tx, "f", succeeded=True)
            invocations.claim(tx, ["f"], T0, 30, 1)
        with store.reading() as tx:
            assert invocations.counts(tx)["f"] == invocations.QueueCounts(queued=0, retrying=1, in_flight=1)
            assert invocations.stats(tx) == {"f": (2, 1)}
            assert invocations.next_due(tx) == T0 + 5

class TestDeadLettersAndOutbox:
    def test_dead_letters_list_filter_and_remove_with_their_queue_copy(self, store):
        with store.transaction() as tx:
            mid = sqs_rules.send(tx, "dlq", b"{}", T0).message_id
            a = deadletters.add(tx, DeadLetter(0, "r1", "f", b'{"a":1}', "RetriesExhausted", 3, "ValueError", "boom",
                                               b"{}", "queue:dlq", mid, T0, T0 + 1))
            deadletters.add(tx, DeadLetter(0, "r2", "g", b"{}", "EventAgeExceeded", 0, None, "", None, "", None,
                                           T0, T0 + 2))
        with store.reading() as tx:
            assert [d.request_id for d in deadletters.listing(tx)] == ["r1", "r2"]
            assert [d.request_id for d in deadletters.listing(tx, function="g")] == ["r2"]
            assert [d.request_id for d in deadletters.listing(tx, target="queue:dlq")] == ["r1"]
            assert deadletters.get(tx, [a])[0].payload == b'{"a":1}'
            assert deadletters.count_by_function(tx) == {"f": 1, "g": 1}
        with store.transaction() as tx:
            assert deadletters.remove(tx, [a, 999]) == 1
            assert queues.peek(tx, "dlq", 10) == []

    def test_dead_letter_ids_are_never_given_twice(self, store):
        def add(tx, request_id: str) -> int:
            return deadletters.add(tx, DeadLetter(0, request_id, "f", b"{}", "RetriesExhausted", 1, None, "", None,
                                                  "", None, T0, T0))

        with store.transaction() as tx:
            first, second = add(tx, "r1"), add(tx, "r2")
            assert (first, second) == (1, 2)
            deadletters.remove(tx, [second])
            assert add(tx, "r3") == 3  # not 2 again: `dlq show 2` stays r2's, even once forgotten
            deadletters.remove(tx, [1, 3])
            assert add(tx, "r4") == 4
            assert deadletters.remove(tx, [4]) == 1 and deadletters.remove(tx, []) == 0  # an empty list: no error
            assert add(tx, "r5") == 5

    def test_outbox_retries_later(self, store):
        with store.transaction() as tx:
            outbox.add(tx, "/folder", "a.json", b"x", "f", T0)
            (item,) = outbox.due(tx, T0)
            outbox.failed(tx, item.id, "Permission denied", T0 + 4)
            assert outbox.due(tx, T0 + 3) == []
            (again,) = outbox.due(tx, T0 + 4)
            assert again.attempts == 1 and again.content == b"x"
            outbox.done(tx, again.id)
            assert outbox.count(tx) == 0


def test_a_rolled_back_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        invocations.enqueue(tx, "a", "f", b"{}", T0)
        raise RuntimeError("boom")
    with store.reading() as tx:
        assert invocations.counts(tx) == {}


def test_committed_events_survive_reopening(tmp_path: Path):
    s = Store.in_state_folder(tmp_path)
    put(s, "a")
    with s.transaction() as tx:
        invocations.claim(tx, ["f"], T0, 30, 1)  # claimed when the "daemon" died
    s.close()
    again = Store.in_state_folder(tmp_path)
    with again.transaction() as tx:
        assert invocations.claim(tx, ["f"], T0, 30, 1) == []  # still leased
        assert invocations.release_all(tx) == 1
        assert [e.request_id for e in invocations.claim(tx, ["f"], T0, 30, 1)] == ["a"]
    again.close()


def test_a_corrupt_store_is_a_clear_error(tmp_path: Path):
    (tmp_path / "store.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.in_state_folder(tmp_path)


def test_grouped_writes_share_commits_and_fail_alone(tmp_path: Path):
    """Writers that arrive while a commit is under way go into the next one together; one of them
    that raises is undone alone and gets its own exception, the others' writes land."""
    s = Store.in_state_folder(tmp_path)
    groups: list[int] = []  # the number of writes in each commit
    commit = s._commit

    def counted(batch) -> None:
        groups.append(len(batch))
        commit(batch)

    s._commit = counted  # type: ignore[method-assign]
    results: dict[int, object] = {}

    def op(i: int):
        def run(tx):
            invocations.enqueue(tx, f"r{i}", "f", b"{}", T0)
            if i == 7:
                raise ValueError("writer 7 fails")
            return i
        return run

    def writer(i: int) -> None:
        try:
            results[i] = s.write(op(i))
        except Exception as e:
            results[i] = e

    first = threading.Thread(target=writer, args=(0,))
    others = [threading.Thread(target=writer, args=(i,)) for i in range(1, 20)]
    with s.transaction():  # hold the write lock: the first writer's commit waits for it ...
        first.start()
        wait_for(lambda: s._leading, what="the first writer to begin its commit")
        for t in others:  # ... and the others pile up behind that commit
            t.start()
        wait_for(lambda: len(s._queue) == 19, what="19 writers queued behind the commit")
    for t in [first, *others]:
        t.join(10)
        assert not t.is_alive()
    assert groups == [1, 19]  # 20 writes, 2 commits: the 19 that waited shared one
    assert isinstance(results[7], ValueError) and str(results[7]) == "writer 7 fails"
    assert {i: r for i, r in results.items() if i != 7} == {i: i for i in range(20) if i != 7}
    with s.reading() as tx:
        queued = {r[0] for r in tx.execute("SELECT request_id FROM events")}
    assert queued == {f"r{i}" for i in range(20) if i != 7}  # writer 7's enqueue was undone, no one else's
    with pytest.raises(ZeroDivisionError):
        s.write(lambda tx: (invocations.enqueue(tx, "r-bad", "f", b"{}", T0), 1 / 0))
    assert s.write(lambda tx: 42) == 42  # the failed op did not poison the next group
    with s.reading() as tx:
        assert invocations.counts(tx)["f"].queued == 19  # and what it wrote was undone
    s.close()


def test_a_store_from_schema_1_gains_the_queue_columns(tmp_path):
    import sqlite3

    path = tmp_path / "store.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, queue TEXT NOT NULL,
            body BLOB NOT NULL, attributes TEXT NOT NULL DEFAULT '{}', sent_at REAL NOT NULL,
            visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, first_receive_at REAL);
        INSERT INTO messages (message_id, queue, body, sent_at, visible_at) VALUES ('m1', 'dlq', X'7B7D', 1, 1);
        CREATE INDEX messages_visible_order ON messages (queue, visible_at, id);  -- briefly shipped, redundant
    """)
    old.close()
    store = Store(path)
    with store.transaction() as tx:
        (m,) = sqs_rules.receive(tx, Queue("dlq"), 2.0, 10)
        assert (m.message_id, m.body, m.group_id) == ("m1", b"{}", None)
        indexes = {r[0] for r in tx.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "messages_visible_order" not in indexes and "messages_by_group" in indexes
    store.close()


def test_a_full_disk_in_a_group_commit_reports_the_full_disk_to_every_writer(tmp_path: Path):
    """When SQLite rolls the whole group back itself, each op's error is the full disk, not the
    failed undo of its savepoint that follows."""
    from lambdad.store.db import _Pending

    s = Store.in_state_folder(tmp_path)
    with s.transaction() as tx:  # the file may not grow: a big write fails as on a full disk
        tx.execute(f"PRAGMA max_page_count = {tx.execute('PRAGMA page_count').fetchone()[0]}")
    small = _Pending(lambda tx: invocations.enqueue(tx, "r1", "f", b"{}", T0))
    big = _Pending(lambda tx: invocations.enqueue(tx, "r2", "f", b"x" * 2_000_000, T0))
    s._commit([small, big])
    assert [str(p.error) for p in (small, big)] == ["database or disk is full"] * 2
    s.close()
