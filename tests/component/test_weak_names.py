"""Weak temporary names through the bucket watcher on a fake clock: a file under a name tools also
write temporaries under (`.env.backup`, `tmp_invoice.pdf`) is held a moment after its close; renamed
away meanwhile it was a temporary (one Put, for the final key), still there it is an object (one Put)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from lambdad.triggers.buckets.inotify import Hint
from lambdad.triggers.buckets.sync import RECENT_S
from lambdad.triggers.buckets.watch import WEAK_SETTLE_S, BucketWatcher
from tests.component.test_bucket_sync import World


class Watched(World):
    """The sync's world, with the watcher that times its hints on the same fake clock."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.watcher = BucketWatcher([self.sync], self.store, clock=self.clock)

    def hint(self, op: str, path: str, src: str = "") -> None:
        self.watcher.work([(self.sync, Hint(op, path, src))])

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass, applying the hints that come due (as the watcher's thread does)."""
        self.clock.advance(seconds)
        for _ in range(100):  # (a round that queued what came due asks for the next at once)
            if self.watcher.step(self.clock.time()) > 0:
                return
        raise AssertionError("the watcher's rounds never came to a wait")

    def created(self) -> list[tuple[str, str]]:
        """(eventName, key) of the events queued since the last look, for the catch-all functions."""
        return [(name, key) for fn, name, key in self.new_events() if fn != "images"]


@pytest.fixture
def w(tmp_path: Path):
    world = Watched(tmp_path)
    yield world
    world.store.close()


@pytest.mark.parametrize("looked", ["before the rename", "after the rename"])
@pytest.mark.parametrize(("temporary", "final"), [
    ("docs/.notes.txt.Xk3pQ9", "docs/notes.txt"),  # rsync
    ("..env.backup.Ab12Cd", ".env.backup"),  # rsync of a file whose own name is weak too
    ("sedAb12Cd", "notes.txt"),  # sed -i
    ("tmpk2j3_x9a", "notes.txt"),  # Python tempfile + os.replace
    ("lambdad.conf;5f3a2b1c", "lambdad.conf"),  # rpm
])
def test_a_held_weak_name_renamed_away_is_one_put_for_the_final_key(w: Watched, temporary, final, looked):
    for attempt in ("new", "overwrite"):
        tmp = w.write(temporary, f"{attempt} content".encode())
        dst = str(w.root / final)
        if looked == "before the rename":
            w.hint("written", tmp)
            os.rename(tmp, dst)
        else:
            os.rename(tmp, dst)
            w.hint("written", tmp)
        w.hint("moved", dst, tmp)
        w.wait(WEAK_SETTLE_S)
        assert w.created() == [("ObjectCreated:Put", final)], attempt


@pytest.mark.parametrize("key", [
    "tmp_invoice.pdf", "reports/tmp_invoice.pdf", "tmp_results.csv", ".env.backup", ".env.sample", ".cache.sqlite",
    "sedentary",
])
def test_a_weak_name_that_stays_is_one_put_after_the_settle(w: Watched, key):
    w.hint("written", w.write(key, b"mine"))
    w.wait(WEAK_SETTLE_S / 2)
    assert w.created() == []  # held
    w.wait(WEAK_SETTLE_S / 2)
    assert w.created() == [("ObjectCreated:Put", key)]
    w.wait(WEAK_SETTLE_S)
    assert w.created() == []  # nothing twice


def test_a_weak_name_written_again_is_announced_once_its_last_close_settled(w: Watched):
    path = w.write("tmp_invoice.pdf", b"draft")
    w.hint("written", path)
    w.wait(WEAK_SETTLE_S * 0.6)
    w.write("tmp_invoice.pdf", b"final")
    w.hint("written", path)
    w.wait(WEAK_SETTLE_S * 0.6)  # the first close's settle is over, the second's is not
    assert w.created() == []
    w.wait(WEAK_SETTLE_S * 0.4)
    assert w.created() == [("ObjectCreated:Put", "tmp_invoice.pdf")]
    assert w.records("on_created")[0]["Records"][0]["s3"]["object"]["eTag"] == hashlib.md5(b"final").hexdigest()


def test_an_announced_weak_name_renamed_is_a_delete_and_a_copy(w: Watched):
    path = w.write("tmp_invoice.pdf")
    w.hint("written", path)
    w.wait(WEAK_SETTLE_S)
    assert w.created() == [("ObjectCreated:Put", "tmp_invoice.pdf")]
    os.rename(path, w.root / "invoice.pdf")
    w.hint("moved", str(w.root / "invoice.pdf"), path)
    assert w.created() == [("ObjectRemoved:Delete", "tmp_invoice.pdf"), ("ObjectCreated:Copy", "invoice.pdf")]


def test_an_object_renamed_onto_a_weak_name_is_a_delete_and_a_copy(w: Watched):
    path = w.write("invoice.pdf")
    w.hint("written", path)
    os.rename(path, w.root / "tmp_invoice.pdf")
    w.hint("moved", str(w.root / "tmp_invoice.pdf"), path)
    w.wait(WEAK_SETTLE_S)
    assert w.created() == [("ObjectCreated:Put", "invoice.pdf"), ("ObjectRemoved:Delete", "invoice.pdf"),
                           ("ObjectCreated:Copy", "tmp_invoice.pdf")]


def test_a_weak_name_deleted_before_its_settle_is_never_announced(w: Watched):
    path = w.write("sedAb12Cd")
    w.hint("written", path)
    os.unlink(path)
    w.hint("deleted", path)
    w.wait(WEAK_SETTLE_S)
    assert w.created() == []


def test_a_held_weak_name_in_a_folder_renamed_is_announced_at_its_new_key(w: Watched):
    path = w.write("d/tmp_results.csv")
    w.hint("written", path)
    os.rename(w.root / "d", w.root / "e")
    w.hint("folder_moved", str(w.root / "e"), str(w.root / "d"))
    w.wait(WEAK_SETTLE_S)
    assert w.created() == [("ObjectCreated:Put", "e/tmp_results.csv")]


def test_startup_and_rescans_see_weak_names_as_objects(w: Watched):
    w.write(".env.backup")
    w.hint("startup", str(w.root))  # a new bucket: indexed quietly, the weak name with the rest
    assert w.created() == []
    os.unlink(w.root / ".env.backup")
    w.hint("scan", str(w.root))
    assert w.created() == [("ObjectRemoved:Delete", ".env.backup")]
    old_ns = time.time_ns() - 60 * 10**9  # (rsync -a gives its temporary the source's mtime)
    for name in ("tmp_results.csv", ".a.txt.Xk3pQ9"):
        w.write(name)
        os.utime(w.root / name, ns=(old_ns, old_ns))
    w.hint("rescan", str(w.root))
    assert w.created() == []  # weak names found by a scan are held, as at a close
    os.rename(w.root / ".a.txt.Xk3pQ9", w.root / "a.txt")  # rsync was mid-transfer: its rename comes
    w.hint("moved", str(w.root / "a.txt"), str(w.root / ".a.txt.Xk3pQ9"))
    w.wait(RECENT_S)  # looked at again as a close would be...
    w.wait(WEAK_SETTLE_S)  # ...and held as one
    assert sorted(w.created()) == [("ObjectCreated:Put", "a.txt"), ("ObjectCreated:Put", "tmp_results.csv")]


def test_the_settle_of_a_commit_that_failed_is_tried_again(w: Watched, monkeypatch: pytest.MonkeyPatch):
    """A full disk at the settle: the held hint is tried again and still announces the file, once."""
    path = w.write("tmp_invoice.pdf")
    w.hint("written", path)

    def full(op):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(w.store, "write", full)
    w.wait(WEAK_SETTLE_S)
    assert w.watcher.held == 1 and w.created() == []
    monkeypatch.undo()
    w.clock.advance(5.0)  # past the backoff
    w.watcher.work([])
    assert w.watcher.held == 0 and w.created() == [("ObjectCreated:Put", "tmp_invoice.pdf")]
