"""Long-running threads on a disk that fills up and frees again: each failed commit is held (nothing
accepted is lost), tried again with backoff on a fake clock, said once, and resumed when there is room."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdad.buckets.sync import BucketSync
from lambdad.buckets.watch import BucketWatcher, Hint
from lambdad.health import Health
from lambdad.manifest.model import Bucket, Function, Manifest, S3Trigger
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
    return Health(say=console, wall=clock.time)


@pytest.fixture
def store():
    s = FillableStore(":memory:")
    yield s
    s.close()


def queued(store) -> list[str]:
    with store.reading() as tx:
        rows = tx.execute("SELECT payload FROM events ORDER BY id").fetchall()
    return [json.loads(p)["Records"][0]["s3"]["object"]["key"] for (p,) in rows]


class TestBucketWatcher:
    @pytest.fixture
    def world(self, tmp_path: Path, store, clock, health):
        root = tmp_path / "bucket"
        root.mkdir()
        trigger = S3Trigger("b", ("s3:ObjectCreated:*",), id="c", where=("functions", "f", "events", 0, "s3"))
        bucket = Bucket("b", root)
        manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": Function("f", "a.h", tmp_path, "python3",
                                                                                 events=(trigger,))},
                            buckets={"b": bucket})
        sync = BucketSync(bucket, manifest, store, clock)
        watcher = BucketWatcher([sync], store, health=health, monotonic=clock.monotonic)
        return watcher, sync, root

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

    def test_a_failure_inside_one_hint_is_the_whole_batchs(self, world, store, clock, health, monkeypatch):
        """The disk fills up in the middle of a batch: no hint of it is dropped as if its file were bad."""
        watcher, sync, root = world
        (root / "a.txt").write_text("a")
        store.full = True
        monkeypatch.setattr(store, "write", lambda op: (_ for _ in ()).throw(
            __import__("sqlite3").OperationalError("database or disk is full")))
        watcher.work([(sync, Hint("written", str(root / "a.txt")))])
        assert watcher.held == 1
        monkeypatch.undo()
        store.full = False
        clock.advance(1.0)
        watcher.work([])
        assert queued(store) == ["a.txt"]
