"""Long-running threads on a disk that fills up and frees again: each failed commit is held (nothing
accepted is lost), tried again with backoff on a fake clock, said once, and resumed when there is room."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from lambdad.health import Health
from lambdad.manifest.model import Bucket, Function, Manifest, S3Trigger
from lambdad.triggers.buckets.inotify import Hint
from lambdad.triggers.buckets.sync import BucketSync
from lambdad.triggers.buckets.watch import BucketWatcher
from tests.component.faults import FillableStore
from tests.helpers import FakeClock


class Console:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(console: Console, clock: FakeClock) -> Health:
    return Health(say=console, clock=clock)


@pytest.fixture
def store():
    s = FillableStore(":memory:")
    yield s
    s.close()


def queued(store) -> list[str]:
    with store.reading() as tx:
        rows = tx.execute("SELECT payload FROM events ORDER BY id").fetchall()
    return [json.loads(p)["Records"][0]["s3"]["object"]["key"] for (p,) in rows]


def bucket_world(tmp_path: Path, store, clock, health) -> tuple[BucketWatcher, BucketSync, Path]:
    root = tmp_path / "bucket"
    root.mkdir()
    trigger = S3Trigger("b", ("s3:ObjectCreated:*",), id="c", where=("functions", "f", "events", 0, "s3"))
    bucket = Bucket("b", root)
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": Function("f", "a.h", tmp_path, "python3",
                                                                             events=(trigger,))},
                        buckets={"b": bucket})
    sync = BucketSync(bucket, manifest, store, clock)
    return BucketWatcher([sync], store, health=health, clock=clock), sync, root


class TestBucketWatcher:
    @pytest.fixture
    def world(self, tmp_path: Path, store, clock, health):
        return bucket_world(tmp_path, store, clock, health)

    def test_a_failed_commit_holds_its_hints_and_they_fire_once_the_disk_has_room(self, world, store, clock,
                                                                               health, console):
        watcher, sync, root = world
        (root / "a.txt").write_text("a")
        store.full = True
        watcher.work([(sync, Hint("written", str(root / "a.txt")))])
        assert queued(store) == [] and watcher.held == 1
        assert health.is_failing("buckets")
        assert len(console.lines) == 1 and "bucket watcher failed: database or disk is full" in console.lines[0]
        (root / "b.txt").write_text("b")
        tries = store.failed_commits
        watcher.work([(sync, Hint("written", str(root / "b.txt")))])  # the backoff is not over: held, not tried
        assert store.failed_commits == tries and watcher.held == 2
        clock.advance(1.0)
        watcher.work([])  # tried again, still full: said only once
        assert store.failed_commits == tries + 1 and len(console.lines) == 1
        store.full = False
        watcher.work([])  # the second wait is longer
        assert queued(store) == []
        clock.advance(2.0)
        watcher.work([])
        assert queued(store) == ["a.txt", "b.txt"]
        assert watcher.held == 0 and not health.is_failing("buckets")
        assert "bucket watcher works again" in console.lines[-1]
        watcher.work([(sync, Hint("written", str(root / "a.txt")))])  # the same change again: nothing twice
        assert queued(store) == ["a.txt", "b.txt"]

    def test_a_write_failing_inside_one_hint_fails_the_whole_batch(self, world, store, clock, monkeypatch):
        """The disk fills up in the middle of a batch: no hint of it is dropped as if its file were bad."""
        watcher, sync, root = world
        (root / "a.txt").write_text("a")

        def full(op):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "write", full)
        watcher.work([(sync, Hint("written", str(root / "a.txt")))])
        assert watcher.held == 1
        monkeypatch.undo()
        clock.advance(1.0)
        watcher.work([])
        assert queued(store) == ["a.txt"]


class TestDispatcher:
    def test_a_poke_from_a_source_thread_never_raises_into_it(self, tmp_path: Path, health, console):
        from tests.component.test_dispatcher import World

        store = FillableStore(":memory:")
        w = World(tmp_path, store=store, health=health)
        try:
            w.dispatcher.invocations.enqueue("f", b"{}")
            store.full = True
            w.dispatcher.wake()  # (the bucket watcher's or a schedule's thread): no exception
            w.dispatcher.loop.run_once()  # (the round it wakes)
            assert health.is_failing("dispatcher") and w.calls == []
            store.full = False
            w.dispatcher.wake()
            w.dispatcher.loop.run_once()
            assert not health.is_failing("dispatcher") and len(w.calls) == 1
            assert [line.split(" failed")[0].split(" works")[0] for line in console.lines] == [
                "the async dispatcher", "the async dispatcher"]
        finally:
            w.close()


    def test_an_outcome_a_full_disk_refuses_is_committed_later_without_running_the_function_again(
            self, tmp_path: Path, health):
        from lambdad.runtime.invocation import Outcome
        from tests.component.test_dispatcher import World

        store = FillableStore(":memory:")

        def fills_the_disk(req):
            store.full = True  # the disk fills up while the function runs
            return Outcome.success, b"{}"

        w = World(tmp_path, fills_the_disk, store=store, health=health)
        try:
            w.dispatcher.invocations.enqueue("f", b"{}")
            w.step()
            assert len(w.calls) == 1 and health.is_failing("dispatcher")
            with pytest.raises(Exception, match="disk is full"):
                w.step()  # still full: the round fails (and the loop backs off)
            store.full = False
            w.step()
            assert w.waiting() == {} and len(w.calls) == 1  # settled, not left leased, not run again
            assert w.dispatcher._claimed["f"] == 0
        finally:
            w.close()


class TestPollers:
    def test_the_sqs_poller_survives_a_full_disk_and_delivers_once_it_has_room(self, tmp_path: Path, health):
        from lambdad.services.queues import Queues
        from lambdad.triggers.mappings.sqs import SqsPoller
        from tests.component.test_sqs_poller import make_world
        from tests.helpers import wait_for

        w = make_world(tmp_path)
        store = FillableStore(":memory:")
        w.store.close()
        w.store = store
        w.poller = SqsPoller(w.manifest, Queues(store, w.clock, w.manifest), w.functions, w.clock, health=health)
        w.send("a")
        store.full = True
        w.poller.start()
        try:
            wait_for(lambda: health.is_failing("sqs"), what="the poller to report the failure")
            assert health.failures()["sqs"].error == "the store cannot be written: database or disk is full"
            store.full = False
            w.poller.wake()  # (anything sent wakes it; the test does not sleep through the backoff)
            wait_for(lambda: w.bodies() == [["a"]] and not health.is_failing("sqs"), what="the batch to be delivered")
        finally:
            w.poller.stop()
            w.close()


class TestSchedules:
    @pytest.fixture
    def world(self, tmp_path: Path, health):
        from tests.component import test_schedules as ts

        w = ts.World(tmp_path, ts.HOURLY, store=FillableStore(":memory:"), clock=FakeClock(start=ts.T0))
        w.service._health = health
        w.service.start()
        w.clock.advance(30)
        return w

    def test_a_run_that_cannot_be_queued_is_held_and_queued_once_there_is_room(self, world, health):
        from lambdad.triggers.schedules.service import RETRY_JOB

        world.store.full = True
        world.scheduler.run("hourly")  # 10:00: no exception into APScheduler, and not lost
        assert world.queued() == [] and health.is_failing("schedules")
        assert RETRY_JOB in world.scheduler.jobs
        world.clock.advance(3600)
        world.scheduler.run("hourly")  # 11:00: behind the 10:00 run
        world.scheduler.run(RETRY_JOB)  # still full
        assert world.queued() == []
        world.store.full = False
        world.scheduler.run(RETRY_JOB)
        assert [e["time"] for e in world.queued()] == ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"]
        assert not health.is_failing("schedules") and world.service.held == []

    def test_a_run_held_for_more_than_a_day_is_given_up_with_a_warning(self, world, health):
        from lambdad.triggers.schedules.service import RETRY_JOB

        warnings: list[str] = []
        world.service._warn = warnings.append
        world.store.full = True
        world.scheduler.run("hourly")
        world.clock.advance(24 * 3600 + 1)
        world.store.full = False
        world.scheduler.run(RETRY_JOB)
        assert world.queued() == [] and world.service.held == []
        assert warnings == ["schedule hourly: the run of 2024-01-01 10:00:00 UTC could not be queued within 24 hours "
                            "(the store could not be written); given up"]


class TestLogWriter:
    def test_records_a_full_disk_refuses_are_written_in_order_once_it_has_room(self, tmp_path: Path, health,
                                                                              clock, console, monkeypatch):
        import errno

        from lambdad import logs
        from lambdad.logs import LogBook, LogRecord, read_records

        echoed: list[str] = []
        book = LogBook(tmp_path / "logs", echo=lambda fn, m: echoed.append(m), health=health, clock=clock)
        real_write = logs.os.write
        full = [True]

        def write(fd, data):
            if full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(logs.os, "write", write)
        flog = book.function("f")
        flog.write([LogRecord(1.0, "r", "one")])
        book.flush()
        flog.write([LogRecord(2.0, "r", "two")])
        book.flush()
        assert health.is_failing("logs") and echoed == ["one", "two"]  # the console shows them at once
        assert len([line for line in console.lines if "log writer failed: No space left" in line]) == 1
        full.clear()
        flog.write([LogRecord(3.0, "r", "three")])
        book.flush()  # the retry is not due yet: kept in order behind the others
        assert list(read_records(tmp_path / "logs", "f")) == []
        clock.advance(1.0)
        book.flush()
        assert [r.message for r in read_records(tmp_path / "logs", "f")] == ["one", "two", "three"]
        assert not health.is_failing("logs")
        book.close()


def test_hints_held_past_the_bound_give_way_to_one_scan_per_bucket(tmp_path: Path, store, clock, health,
                                                                   monkeypatch):
    from lambdad.triggers.buckets import watch

    watcher, sync, root = bucket_world(tmp_path, store, clock, health)
    monkeypatch.setattr(watch, "MAX_HELD", 3)
    for name in "abcde":
        (root / name).write_text(name)
        os.utime(root / name, (1_600_000_000, 1_600_000_000))  # settled: a scan announces it at once
    store.full = True
    for name in "abcde":
        watcher.work([(sync, Hint("written", str(root / name)))])
    assert watcher.held <= 3  # (the 4th collapsed the 4 into one scan; the 5th is held behind it)
    store.full = False
    clock.advance(60.0)
    watcher.work([])
    assert sorted(queued(store)) == list("abcde")


def test_an_async_invoke_on_a_full_disk_is_a_clear_service_error_not_a_traceback(tmp_path: Path):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from lambdad.api.lambda_api import LambdaApi
    from tests.component.test_dispatcher import World

    store = FillableStore(":memory:")
    w = World(tmp_path, store=store)
    store.full = True
    pool = ThreadPoolExecutor(2)
    api = LambdaApi(w.manifest, w.functions, w.dispatcher.invocations, pool, python_version=lambda name: "3.11.7")
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/2015-03-31/functions/f/invocations", "query_string": b"",
             "headers": [(b"x-amz-invocation-type", b"Event")]}
    try:
        asyncio.run(api(scope, receive, send))
        assert sent[0]["status"] == 500
        headers = {k.lower(): v for k, v in sent[0]["headers"]}
        assert headers[b"x-amzn-errortype"] == b"ServiceException"
        assert json.loads(sent[1]["body"])["Message"].endswith("the store cannot be written: database or disk is full")
    finally:
        pool.shutdown()
        w.close()
