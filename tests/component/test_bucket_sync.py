"""BucketSync on a real folder and an in-memory store, driven by direct calls (no inotify): which S3
events each change produces, and that nothing is announced twice."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from lambdad.manifest.model import Bucket, Function, Manifest, S3Trigger
from lambdad.store import Store, invocations
from lambdad.triggers.buckets.sync import BucketSync
from tests.helpers import FakeClock


class World:
    def __init__(self, tmp_path: Path, versioning: bool = False) -> None:
        self.root = tmp_path / "bucket"
        self.root.mkdir()
        created = S3Trigger("uploads", ("s3:ObjectCreated:*",), id="created", where=("functions", "on_created", "events", 0, "s3"))
        removed = S3Trigger("uploads", ("s3:ObjectRemoved:*",), id="removed", where=("functions", "on_removed", "events", 0, "s3"))
        images = S3Trigger("uploads", ("s3:ObjectCreated:Put",), prefix="images/", suffix=".jpg",
                           where=("functions", "images", "events", 0, "s3"))
        fns = {
            "on_created": Function("on_created", "a.h", tmp_path, "python3", events=(created,)),
            "on_removed": Function("on_removed", "a.h", tmp_path, "python3", events=(removed,)),
            "images": Function("images", "a.h", tmp_path, "python3", events=(images,)),
        }
        bucket = Bucket("uploads", self.root, versioning=versioning)
        self.manifest = Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", functions=fns,
                                 buckets={"uploads": bucket})
        self.store = Store(":memory:")
        self.clock = FakeClock()
        self.sync = BucketSync(bucket, self.manifest, self.store, self.clock)
        self._seen = 0

    def write(self, key: str, data: bytes = b"data") -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def new_events(self) -> list[tuple[str, str, str]]:
        """(function, eventName, key) of events queued since the last call, in order."""
        with self.store.reading() as tx:
            rows = tx.execute("SELECT function, payload FROM events ORDER BY id").fetchall()
        out = []
        for function, payload in rows[self._seen :]:
            record = json.loads(payload)["Records"][0]
            out.append((function, record["eventName"], record["s3"]["object"]["key"]))
        self._seen = len(rows)
        return out

    def records(self, function: str) -> list[dict]:
        with self.store.reading() as tx:
            rows = tx.execute("SELECT payload FROM events WHERE function = ? ORDER BY id", (function,)).fetchall()
        return [json.loads(r[0]) for r in rows]


@pytest.fixture
def w(tmp_path: Path) -> World:
    world = World(tmp_path)
    yield world
    world.store.close()


def test_a_written_file_is_a_put_with_its_md5_and_size(w: World):
    path = w.write("images/my photo.jpg", b"hello")
    w.sync.written(path)
    assert w.new_events() == [("on_created", "ObjectCreated:Put", "images/my+photo.jpg"),
                              ("images", "ObjectCreated:Put", "images/my+photo.jpg")]
    event = w.records("images")[0]
    S3Model(**event)
    obj = event["Records"][0]["s3"]["object"]
    assert obj["size"] == 5 and obj["eTag"] == hashlib.md5(b"hello").hexdigest()
    assert event["Records"][0]["s3"]["configurationId"] == "lambdad-images-0"
    assert w.records("on_created")[0]["Records"][0]["s3"]["configurationId"] == "created"
    assert "versionId" not in obj


def test_an_overwrite_fires_again_but_the_same_close_twice_does_not(w: World):
    path = w.write("a.txt", b"one")
    w.sync.written(path)
    w.sync.written(path)  # the same file, unchanged: a rescan and a late event saw the same thing
    w.write("a.txt", b"two")
    w.sync.written(path)
    names = [(e[1], e[2]) for e in w.new_events() if e[0] == "on_created"]
    assert names == [("ObjectCreated:Put", "a.txt"), ("ObjectCreated:Put", "a.txt")]
    first, second = (r["Records"][0]["s3"]["object"] for r in w.records("on_created"))
    assert second["eTag"] == hashlib.md5(b"two").hexdigest()
    assert second["sequencer"] > first["sequencer"]  # S3's per-key ordering


def test_a_rename_is_a_delete_and_a_copy(w: World):
    src = w.write("docs/a.txt", b"x")
    w.sync.written(src)
    w.new_events()
    dst = str(w.root / "docs" / "b.txt")
    os.rename(src, dst)
    w.sync.moved(src, dst)
    assert w.new_events() == [("on_removed", "ObjectRemoved:Delete", "docs/a.txt"),
                              ("on_created", "ObjectCreated:Copy", "docs/b.txt")]
    delete = w.records("on_removed")[0]
    assert set(delete["Records"][0]["s3"]["object"]) == {"key", "sequencer"}  # no size, no eTag
    S3Model(**delete)


def test_an_atomic_save_fires_once_for_the_final_key(w: World):
    tmp = w.write("report.txt.tmp", b"final content")  # an ignored temporary name
    w.sync.written(tmp)
    dst = str(w.root / "report.txt")
    os.rename(tmp, dst)
    w.sync.moved(tmp, dst)
    assert w.new_events() == [("on_created", "ObjectCreated:Put", "report.txt")]


@pytest.mark.parametrize("looked", ["before the rename", "after the rename"])
@pytest.mark.parametrize(("temporary", "final"), [
    ("docs/.notes.txt.Xk3pQ9", "docs/notes.txt"),  # rsync
    (".~tmp~/notes.txt", "notes.txt"),  # rsync --delay-updates
    ("sedAb12Cd", "notes.txt"),  # sed -i
    ("tmpk2j3_x9a", "notes.txt"),  # Python tempfile + os.replace
    ("notes.txt___jb_tmp___", "notes.txt"),  # JetBrains
])
def test_a_tool_writing_under_a_temporary_name_is_one_put_for_the_final_key(w: World, temporary, final, looked):
    for attempt in ("new", "overwrite"):
        tmp = w.write(temporary, f"{attempt} content".encode())
        dst = str(w.root / final)
        if looked == "before the rename":
            w.sync.written(tmp)
            os.rename(tmp, dst)
        else:
            os.rename(tmp, dst)
            w.sync.written(tmp)
        w.sync.moved(tmp, dst)
        assert w.new_events() == [("on_created", "ObjectCreated:Put", final)], attempt


def test_an_editor_saving_by_renaming_the_old_file_away_is_one_put(w: World):
    path = w.write("notes.txt", b"v1")
    w.sync.written(path)
    w.new_events()
    os.rename(path, path + "~")  # vim and emacs: the old file becomes the backup...
    assert w.sync.moved(path, path + "~") == [path]  # ...looked at again shortly, not deleted now
    w.write("notes.txt", b"v2")  # ...and the new content is written under the name
    w.sync.written(path)
    os.unlink(path + "~")
    w.sync.deleted(path + "~")
    w.sync.deleted(path)  # the second look
    assert w.new_events() == [("on_created", "ObjectCreated:Put", "notes.txt")]
    os.rename(path, path + "~")  # renamed away for good: a Delete, at the second look
    assert w.sync.moved(path, path + "~") == [path] and w.new_events() == []
    w.sync.deleted(path)
    assert w.new_events() == [("on_removed", "ObjectRemoved:Delete", "notes.txt")]


def test_written_then_renamed_before_we_looked_is_put_delete_copy(w: World):
    src = w.write("a.txt", b"x")
    dst = str(w.root / "b.txt")
    os.rename(src, dst)  # both happened before the sync thread got to the first hint
    w.sync.written(src)
    w.sync.moved(src, dst)
    assert [(e[1], e[2]) for e in w.new_events()] == [
        ("ObjectCreated:Put", "a.txt"), ("ObjectRemoved:Delete", "a.txt"), ("ObjectCreated:Copy", "b.txt")]


def test_moved_out_and_deleted(w: World):
    a, b = w.write("a.txt"), w.write("b.txt")
    w.sync.written(a)
    w.sync.written(b)
    w.new_events()
    os.unlink(a)
    w.sync.deleted(a)
    os.rename(b, w.root.parent / "outside.txt")
    w.sync.deleted(b)  # a move out is reported as a deletion
    w.sync.deleted(a)  # reported twice: announced once
    assert w.new_events() == [("on_removed", "ObjectRemoved:Delete", "a.txt"),
                              ("on_removed", "ObjectRemoved:Delete", "b.txt")]


def test_folder_moves_and_removals_are_one_event_per_file(w: World):
    for k in ("d/1.txt", "d/sub/2.txt"):
        w.sync.written(w.write(k))
    w.new_events()
    os.rename(w.root / "d", w.root / "e")
    w.sync.folder_moved(str(w.root / "d"), str(w.root / "e"))
    got = sorted(w.new_events())
    assert got == sorted([("on_removed", "ObjectRemoved:Delete", "d/1.txt"),
                          ("on_created", "ObjectCreated:Copy", "e/1.txt"),
                          ("on_removed", "ObjectRemoved:Delete", "d/sub/2.txt"),
                          ("on_created", "ObjectCreated:Copy", "e/sub/2.txt")])
    os.rename(w.root / "e", w.root.parent / "away")
    w.sync.gone_under(str(w.root / "e"))
    assert sorted(w.new_events()) == [("on_removed", "ObjectRemoved:Delete", "e/1.txt"),
                                      ("on_removed", "ObjectRemoved:Delete", "e/sub/2.txt")]


def test_a_folder_moved_in_is_one_put_per_file_and_empty_folders_are_nothing(w: World, tmp_path: Path):
    outside = tmp_path / "incoming"
    (outside / "x" / "empty").mkdir(parents=True)
    (outside / "x" / "1.txt").write_text("1")
    (outside / "2.txt").write_text("2")
    os.rename(outside, w.root / "incoming")
    w.sync.arrived(str(w.root / "incoming"))
    assert sorted(w.new_events()) == [("on_created", "ObjectCreated:Put", "incoming/2.txt"),
                                      ("on_created", "ObjectCreated:Put", "incoming/x/1.txt")]


def test_ignored_and_linked_files(w: World, tmp_path: Path):
    w.sync.written(w.write(".notes.swp"))
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", w.root / "link-out.txt")
    w.sync.written(str(w.root / "link-out.txt"))
    w.sync.written(w.write("real.txt", b"in"))
    os.symlink(w.root / "real.txt", w.root / "link-in.txt")
    w.sync.written(str(w.root / "link-in.txt"))
    assert [e[2] for e in w.new_events()] == ["real.txt", "link-in.txt"]


def test_a_scan_announces_what_changed_and_skips_files_still_being_written(w: World):
    w.sync.written(w.write("kept.txt", b"same"))
    w.sync.written(w.write("changed.txt", b"old"))
    w.sync.written(w.write("removed.txt"))
    w.new_events()
    w.clock.advance(10)
    w.write("changed.txt", b"new!")
    os.unlink(w.root / "removed.txt")
    w.write("new.txt")
    for name in ("changed.txt", "new.txt"):  # make them look settled
        os.utime(w.root / name, ns=(time.time_ns() - 5 * 10**9,) * 2)
    w.write("fresh.txt")  # just written: may still be being written
    later = w.sync.scan()
    assert sorted(e[1:] for e in w.new_events() if e[0] != "images") == [
        ("ObjectCreated:Put", "changed.txt"), ("ObjectCreated:Put", "new.txt"), ("ObjectRemoved:Delete", "removed.txt")]
    assert later == [str(w.root / "fresh.txt")]
    assert w.sync.scan() == [str(w.root / "fresh.txt")]
    assert w.new_events() == []  # nothing announced twice


def test_the_first_scan_of_a_new_bucket_is_quiet(w: World):
    w.write("old1.txt")
    w.write("old2.txt")
    assert not w.sync.known()
    w.sync.mark_known()
    w.sync.scan(quiet=True)
    assert w.new_events() == []
    assert w.sync.known()
    os.unlink(w.root / "old1.txt")
    w.sync.scan()
    assert w.new_events() == [("on_removed", "ObjectRemoved:Delete", "old1.txt")]


def test_unreadable_and_vanished_files_are_skipped_with_a_reason(w: World, monkeypatch: pytest.MonkeyPatch):
    warnings: list[str] = []
    w.sync._warn = warnings.append
    path = w.write("locked.txt")
    real_open = open

    def refuse(p, *args, **kwargs):  # permissions cannot be tested as root: make the read fail instead
        if str(p) == path:
            raise PermissionError(13, "Permission denied", p)
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    w.sync.written(path)
    monkeypatch.undo()
    assert w.new_events() == []
    assert warnings == ["bucket uploads: cannot read locked.txt (Permission denied); no event"]
    w.sync.written(str(w.root / "never-existed.txt"))
    assert w.new_events() == []


def test_versioned_buckets(tmp_path: Path):
    w = World(tmp_path, versioning=True)
    path = w.write("v.txt", b"1")
    w.sync.written(path)
    w.write("v.txt", b"22")
    w.sync.written(path)
    os.unlink(path)
    w.sync.deleted(path)
    put1, put2 = (r["Records"][0]["s3"]["object"]["versionId"] for r in w.records("on_created"))
    assert put1 != put2 and len(put1) == 32
    (marker,) = w.records("on_removed")
    record = marker["Records"][0]
    assert record["eventName"] == "ObjectRemoved:DeleteMarkerCreated"
    assert record["s3"]["object"]["versionId"] not in (put1, put2)
    S3Model(**marker)
    w.store.close()


def test_index_and_events_commit_together(w: World):
    path = w.write("a.txt")
    w.sync.written(path)
    with w.store.reading() as tx:
        assert invocations.counts(tx)["on_created"].queued == 1
        assert tx.execute("SELECT COUNT(*) FROM objects").fetchone()[0] == 1
