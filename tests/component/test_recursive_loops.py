"""Recursive loop detection on a fake clock with in-memory environments: a handler that writes into
its own bucket, or sends to its own queue, is stopped at its 17th invocation in one chain, logged and
dead-lettered; `recursive_loop: allow` lets it run; files nobody's invocation wrote start a chain
of their own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lambdad import tracing
from lambdad.dispatcher import Dispatcher
from lambdad.logs import LogBook, read_records
from lambdad.manifest.model import (
    AsyncConfig,
    Bucket,
    Function,
    Manifest,
    Queue,
    RecursiveLoop,
    S3Trigger,
    SqsTrigger,
    Target,
    TargetKind,
)
from lambdad.payloads.destinations import Condition
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.runtime.running import LAG_S, RACE_S, RecentInvocations, Writers
from lambdad.services import sqs_rules
from lambdad.services.queues import Queues
from lambdad.store import Store, queues
from lambdad.triggers.buckets.sync import BucketSync
from lambdad.triggers.mappings.sqs import SqsPoller
from tests.component.twins import FakeSpawner, InlineExecutor
from tests.helpers import FakeClock


class BucketLoop:
    """A function subscribed to its own bucket whose handler writes a file there on each invocation
    (stamped with the fake clock's time, as the file system would stamp it), until `stop_after`."""

    def __init__(self, tmp_path: Path, recursive_loop: RecursiveLoop = RecursiveLoop.terminate,
                 stop_after: int = 1000) -> None:
        self.clock = FakeClock()
        self.root = tmp_path / "bucket"
        self.root.mkdir()
        self.invocations = 0
        self.stop_after = stop_after

        def handler(req):
            self.invocations += 1
            if self.invocations >= self.stop_after:
                return Outcome.success, b"null"
            self.clock.advance(0.01)  # (the file is written during the invocation)
            path = self.root / f"out-{self.invocations}.txt"
            path.write_text("again")
            ns = int(self.clock.time() * 1e9)
            os.utime(path, ns=(ns, ns))
            self.written.append(str(path))
            return Outcome.success, b"null", [str(path)]  # (the worker reports what the handler wrote)

        self.written: list[str] = []
        fn = Function("loop", "app.handler", tmp_path, "python3", events=(S3Trigger("b"),), recursive_loop=recursive_loop,
                      async_config=AsyncConfig(dead_letter=Target(TargetKind.queue, "dlq")))
        bucket = Bucket("b", self.root)
        self.manifest = Manifest(tmp_path / "lambdad.yaml", functions={"loop": fn}, buckets={"b": bucket},
                                 queues={"dlq": Queue("dlq")})
        self.functions = Functions(self.manifest, LogBook(tmp_path / "logs"), self.clock, {},
                                   spawn_override=FakeSpawner(handler))
        self.store = Store(":memory:")
        self.dispatcher = Dispatcher(self.store, self.functions, self.clock, lambda _: None, InlineExecutor())
        self.sync = BucketSync(bucket, self.manifest, self.store, self.clock,
                               on_created=self.functions.recent.file_event)

    def drop(self, name: str) -> None:
        """A file written by someone else."""
        path = self.root / name
        path.write_text("start")
        ns = int(self.clock.time() * 1e9)
        os.utime(path, ns=(ns, ns))
        self.sync.written(str(path))

    def run(self, rounds: int = 100) -> None:
        """Invoke what is queued; the watcher then notices the files the handler wrote."""
        for _ in range(rounds):
            self.clock.advance(1)
            self.dispatcher.step(self.clock.time())
            if not self.written:
                return
            for path in self.written:
                self.sync.written(path)
            self.written.clear()

    def dlq_messages(self) -> list[queues.Message]:
        with self.store.reading() as tx:
            return queues.peek(tx, "dlq", 100)

    def log(self) -> list[str]:
        self.functions.flush_logs()
        return [r.message for r in read_records(self.functions.logbook.folder, "loop")]

    def close(self) -> None:
        self.functions.close()
        self.store.close()


def test_a_handler_writing_into_its_own_bucket_is_stopped_at_its_17th_invocation(tmp_path: Path):
    w = BucketLoop(tmp_path)
    try:
        w.drop("start.txt")
        w.run()
        assert w.invocations == tracing.MAX_CHAIN
        (message,) = w.dlq_messages()
        assert json.loads(message.body)["Records"][0]["s3"]["object"]["key"] == f"out-{tracing.MAX_CHAIN}.txt"
        assert message.attributes["ErrorMessage"]["StringValue"].startswith("Lambda has detected your function")
        with w.store.reading() as tx:
            (row,) = tx.execute("SELECT condition, error_type FROM dead_letters").fetchall()
        assert row == (Condition.recursive_loop.value, "RecursiveInvocationException")
        assert any("stopped" in line and "recursive loop" in line for line in w.log())
    finally:
        w.close()


def test_with_recursive_loop_allow_the_handler_keeps_going(tmp_path: Path):
    w = BucketLoop(tmp_path, RecursiveLoop.allow, stop_after=30)
    try:
        w.drop("start.txt")
        w.run()
        assert w.invocations == 30 and w.dlq_messages() == []
    finally:
        w.close()


def test_files_someone_else_writes_while_the_function_runs_each_start_a_chain(tmp_path: Path):
    w = BucketLoop(tmp_path, stop_after=1)  # the handler writes nothing ...
    try:
        def handler_and_user(req):  # ... while a user drops a file into the bucket during each invocation
            w.invocations += 1
            if w.invocations < 40:
                w.drop(f"user-{w.invocations}.txt")
            return Outcome.success, b"null"

        w.functions.pool("loop")._spawn = FakeSpawner(handler_and_user)
        w.drop("user-0.txt")
        for _ in range(60):
            w.clock.advance(1)
            w.dispatcher.step(w.clock.time())
        assert w.invocations == 40 and w.dlq_messages() == []
    finally:
        w.close()


def test_the_writer_is_the_invocation_that_reported_the_path_before_the_bucket_saw_it(tmp_path: Path):
    recent = RecentInvocations()
    path, other = str(tmp_path / "f.txt"), str(tmp_path / "other.txt")
    a = recent.begin("f", "A", 100.0)
    recent.begin("g", "B", 100.0)  # runs throughout, writes nothing
    recent.wrote(a, path, 100.2)
    recent.file_event("e1", path, 100.3)  # seen after a reported it, while a runs: known at once
    recent.file_event("e2", other, 100.3)  # nobody reported it: waits only for a report on its way
    recent.file_event("e3", path, 100.1)  # seen before a reported it: someone else's
    assert recent.writers("e1", 100.31) == Writers(("A",))
    assert recent.writers("e1", 100.31) == Writers()  # answered once
    assert recent.writers("e2", 100.31) == Writers(waiting=True, until=100.3 + RACE_S)
    assert recent.writers("e2", 100.3 + RACE_S) == Writers()
    assert recent.writers("e3", 100.31) == Writers()
    recent.end(a, 101.0)
    recent.file_event("e4", path, 101.0 + LAG_S - 0.1)  # the watcher was behind
    recent.file_event("e5", path, 101.0 + LAG_S + 0.1)  # long after a ended: a later write of someone else
    assert recent.writers("e4", 110.0) == Writers(("A",))
    assert recent.writers("e5", 110.0) == Writers()


def test_an_event_nobody_wrote_waits_for_nobody_when_no_invocation_runs(tmp_path: Path):
    recent = RecentInvocations()
    a = recent.begin("f", "A", 100.0)
    recent.end(a, 100.5)
    recent.file_event("e1", str(tmp_path / "f.txt"), 100.6)  # not even remembered
    assert recent.writers("e1", 100.6) == Writers()


def test_a_write_reported_at_once_counts_though_the_handler_then_times_out(tmp_path: Path):
    """The worker reports a write when the handler opens the file; the bucket sees it while the
    handler still runs; the invocation then times out (it reports nothing at its end)."""
    w = BucketLoop(tmp_path)
    try:
        tried: set[str] = set()

        def handler(req):
            if req.request_id in tried:  # a retry of the timed-out event: writes nothing again
                return Outcome.success, b"null"
            tried.add(req.request_id)
            w.invocations += 1
            w.clock.advance(0.01)
            path = w.root / f"out-{w.invocations}.txt"
            req.on_write(str(path))
            path.write_text("again")
            w.clock.advance(0.01)
            w.sync.written(str(path))  # seen at once, the handler still running
            w.clock.advance(3)  # ... and it goes on working, past any wait
            return Outcome.timeout, b"{}"

        w.functions.pool("loop")._spawn = FakeSpawner(handler)
        w.drop("start.txt")
        for _ in range(40):
            w.clock.advance(1)
            w.dispatcher.step(w.clock.time())
        assert w.invocations == tracing.MAX_CHAIN
        assert len(w.dlq_messages()) == 1
    finally:
        w.close()


def test_a_file_renamed_or_copied_into_the_bucket_keeps_an_old_mtime_and_still_continues_the_chain(
        tmp_path: Path):
    w = BucketLoop(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    try:
        def handler(req):  # os.rename / shutil.copy2 keep the source's mtime: an hour old here
            w.invocations += 1
            source = outside / f"made-{w.invocations}.txt"
            source.write_text("again")
            old = int((w.clock.time() - 3600) * 1e9)
            os.utime(source, ns=(old, old))
            target = w.root / f"out-{w.invocations}.txt"
            req.on_write(str(target))
            os.rename(source, target)
            w.written.append(str(target))
            return Outcome.success, b"null"

        w.functions.pool("loop")._spawn = FakeSpawner(handler)
        w.drop("start.txt")
        w.run()
        assert w.invocations == tracing.MAX_CHAIN and len(w.dlq_messages()) == 1
    finally:
        w.close()


def test_an_sqs_loop_is_stopped_and_its_message_moved_to_the_queues_dead_letter_queue(tmp_path: Path):
    clock = FakeClock()
    queue = Queue("q", redrive_dead_letter_queue="q-dlq", redrive_max_receive_count=5)
    dlq = Queue("q-dlq")
    store = Store(":memory:")
    invocations = []

    def handler(req):  # sends one message to its own queue, as boto3 in a handler would
        invocations.append(req.trace_id)
        store.write(lambda tx: sqs_rules.send(tx, queue, b"again", clock.time(), trace_header=req.trace_id))
        return Outcome.success, b"null"

    fn = Function("f", "app.handler", tmp_path, "python3", events=(SqsTrigger("q"),))
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": fn}, queues={"q": queue, "q-dlq": dlq})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock, {}, spawn_override=FakeSpawner(handler))
    poller = SqsPoller(manifest, Queues(store, clock, manifest), functions, clock, InlineExecutor())
    try:
        store.write(lambda tx: sqs_rules.send(tx, queue, b"start", clock.time()))
        for _ in range(40):
            clock.advance(1)
            poller.step(clock.time())
        with store.reading() as tx:
            left, dead = queues.peek(tx, "q", 10), queues.peek(tx, "q-dlq", 10)
        assert len(invocations) == tracing.MAX_CHAIN
        assert left == [] and len(dead) == 1 and tracing.chain_count(dead[0].trace_header, "f") == 15
        # each SQS-triggered invocation starts a new trace, as on Lambda; the Lineage carries the chain
        assert len({tracing.root_of(t) for t in invocations}) == tracing.MAX_CHAIN
        functions.flush_logs()
        assert any("stopped a recursive loop" in r.message and "moved to q-dlq" in r.message
                   for r in read_records(functions.logbook.folder, "f"))
    finally:
        functions.close()
        store.close()


def test_a_fresh_message_batched_with_a_looping_one_is_not_stopped_and_neither_are_its_follow_ups(tmp_path: Path):
    """A job that re-queues itself once shares a batch with a message far along a loop: the batch's
    invocation carries the shortest chain, so the job's follow-up is delivered; only the looping
    message is stopped."""
    clock = FakeClock()
    queue = Queue("q", redrive_dead_letter_queue="dlq", redrive_max_receive_count=5)
    store = Store(":memory:")
    seen = []

    def handler(req):
        for record in json.loads(req.payload)["Records"]:
            seen.append(record["body"])
            if record["body"] == "job":
                store.write(lambda tx: sqs_rules.send(tx, queue, b"job-again", clock.time(), trace_header=req.trace_id))
        return Outcome.success, b"null"

    fn = Function("f", "app.handler", tmp_path, "python3", events=(SqsTrigger("q", batch_size=10),))
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": fn}, queues={"q": queue, "dlq": Queue("dlq")})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock, {}, spawn_override=FakeSpawner(handler))
    poller = SqsPoller(manifest, Queues(store, clock, manifest), functions, clock, InlineExecutor())
    looping = f"Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:{tracing.function_hash('f')}:14"
    try:
        store.write(lambda tx: sqs_rules.send(tx, queue, b"looping", clock.time(), trace_header=looping))
        store.write(lambda tx: sqs_rules.send(tx, queue, b"job", clock.time()))
        for _ in range(5):
            clock.advance(1)
            poller.step(clock.time())
        with store.reading() as tx:
            dead = [m.body for m in queues.peek(tx, "dlq", 10)]
        assert seen == ["looping", "job", "job-again"] and dead == []
        looping_again = f"Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:{tracing.function_hash('f')}:15"
        store.write(lambda tx: sqs_rules.send(tx, queue, b"stopped", clock.time(), trace_header=looping_again))
        store.write(lambda tx: sqs_rules.send(tx, queue, b"fresh", clock.time()))
        clock.advance(1)
        poller.step(clock.time())
        with store.reading() as tx:
            dead = [m.body for m in queues.peek(tx, "dlq", 10)]
        assert dead == [b"stopped"] and seen[-1] == "fresh"
    finally:
        functions.close()
        store.close()


def test_a_queue_destinations_record_carries_the_invocations_trace(tmp_path: Path):
    """A function the destination queue triggers continues the chain (and a loop through it is seen)."""
    clock = FakeClock()
    fn = Function("f", "app.handler", tmp_path, "python3",
                  async_config=AsyncConfig(on_success=Target(TargetKind.queue, "done")))
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": fn}, queues={"done": Queue("done")})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock, {},
                          spawn_override=FakeSpawner(lambda req: (Outcome.success, b"null")))
    store = Store(":memory:")
    dispatcher = Dispatcher(store, functions, clock, lambda _: None, InlineExecutor())
    caller = f"Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:{tracing.function_hash('f')}:4"
    try:
        dispatcher.invocations.enqueue("f", b"{}", trace=caller)
        dispatcher.step(clock.time())
        with store.reading() as tx:
            (message,) = queues.peek(tx, "done", 10)
        assert tracing.root_of(message.trace_header) == tracing.root_of(caller)
        assert tracing.chain_count(message.trace_header, "f") == 5
    finally:
        functions.close()
        store.close()


def test_while_another_function_runs_a_users_file_waits_only_a_moment_and_a_reported_one_not_at_all(
        tmp_path: Path):
    w = BucketLoop(tmp_path, stop_after=1)  # the handler writes nothing
    try:
        other = w.functions.recent.begin("other", tracing.for_invocation(None, "other", 0), w.clock.time())
        w.drop("user.txt")
        w.dispatcher.step(w.clock.time())
        assert w.invocations == 0  # its writer's report could still be on its way ...
        w.clock.advance(RACE_S)
        w.dispatcher.step(w.clock.time())
        assert w.invocations == 1  # ... but not for longer (not the 2 s it used to wait)
        w.functions.recent.wrote(other, str(w.root / "theirs.txt"), w.clock.time())
        w.clock.advance(0.001)
        w.drop("theirs.txt")
        w.dispatcher.step(w.clock.time())
        assert w.invocations == 2  # the writer is known at once
        w.functions.recent.end(other, w.clock.time())
    finally:
        w.close()
