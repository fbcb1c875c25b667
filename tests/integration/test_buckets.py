"""Folders as buckets through a real daemon: real files, real inotify, handlers that record what they get."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from tests.fixtures.manifests import BUCKETS_MANIFEST
from tests.helpers import all_settled, wait_for, write_manifest
from tests.integration.test_daemon import Running


@pytest.fixture
def project(tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "received.jsonl"))
    write_manifest(tmp_path, BUCKETS_MANIFEST)
    return tmp_path


def records(project: Path, suffix: str = "") -> list[dict]:
    path = project / f"received.jsonl{suffix}"
    if not path.exists():
        return []
    out = []
    text = path.read_text()
    for line in text[: text.rfind("\n") + 1].splitlines():  # complete lines only: a handler may be writing
        event = json.loads(line)["event"]
        S3Model(**event)  # every delivered event is a valid S3 notification
        assert len(event["Records"]) == 1  # one record per notification, as S3 sends
        out.append(event["Records"][0])
    return out


def seen(project: Path, suffix: str = "") -> list[tuple[str, str]]:
    return [(r["eventName"], unquote_plus(r["s3"]["object"]["key"])) for r in records(project, suffix)]


def wait_seen(project: Path, count: int, suffix: str = "") -> list[tuple[str, str]]:
    wait_for(lambda: len(seen(project, suffix)) >= count, timeout=15,
             what=f"{count} S3 events (have {seen(project, suffix)})")
    return seen(project, suffix)


@pytest.fixture
def daemon(project: Path):
    running = Running(project)
    running.wait_line("ready in ")
    yield running
    assert running.stop() == 0


def uploads(project: Path) -> Path:
    return project / "buckets" / "uploads"


def test_the_bucket_folders_are_created(project: Path, daemon: Running):
    assert uploads(project).is_dir() and (project / "buckets" / "archive").is_dir()


def test_writes_overwrites_renames_and_deletes(project: Path, daemon: Running):
    up = uploads(project)
    (up / "a.txt").write_text("one")
    assert wait_seen(project, 1) == [("ObjectCreated:Put", "a.txt")]
    first = records(project)[0]
    assert first["s3"]["object"]["size"] == 3
    assert first["s3"]["object"]["eTag"] == hashlib.md5(b"one").hexdigest()
    assert first["s3"]["bucket"] == {"name": "uploads", "ownerIdentity": first["s3"]["bucket"]["ownerIdentity"],
                                     "arn": "arn:aws:s3:::uploads"}
    (up / "a.txt").write_text("two!")
    assert wait_seen(project, 2)[-1] == ("ObjectCreated:Put", "a.txt")
    os.rename(up / "a.txt", up / "b.txt")
    got = wait_seen(project, 4)[2:]
    assert sorted(got) == [("ObjectCreated:Copy", "b.txt"), ("ObjectRemoved:Delete", "a.txt")]
    (up / "b.txt").unlink()
    assert wait_seen(project, 5)[-1] == ("ObjectRemoved:Delete", "b.txt")
    second, copy = records(project)[1], next(r for r in records(project) if r["eventName"] == "ObjectCreated:Copy")
    assert copy["s3"]["object"]["eTag"] == second["s3"]["object"]["eTag"]


def test_an_atomic_save_fires_once_for_the_final_key(project: Path, daemon: Running):
    up = uploads(project)
    (up / ".report.txt.tmp").write_text("half")  # ignored name; written, then renamed into place
    os.rename(up / ".report.txt.tmp", up / "report.txt")
    (up / "marker.txt").write_text("m")  # a later event: when it shows up, the save was handled
    got = wait_seen(project, 2)
    assert sorted(got) == [("ObjectCreated:Put", "marker.txt"), ("ObjectCreated:Put", "report.txt")]


@pytest.mark.skipif(shutil.which("rsync") is None, reason="the rsync binary is not installed")
def test_an_rsync_into_a_bucket_is_one_put_per_file(project: Path, daemon: Running, tmp_path: Path):
    source = tmp_path / "source"
    (source / "docs").mkdir(parents=True)
    files = {"a.txt": "alpha", "docs/b.txt": "bravo", "docs/c.json": "{}", "archive.tar.gz": "x" * 100_000,
             ".env.backup": "weak"}  # (written as ..env.backup.XXXXXX: a weak name renamed onto another)
    for key, text in files.items():
        (source / key).write_text(text)
    up = uploads(project)

    def rsync(*options: str) -> None:
        done = subprocess.run(["rsync", "-a", *options, f"{source}/", f"{up}/"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr

    rsync()  # each file written as .NAME.XXXXXX, then renamed onto NAME
    assert sorted(wait_seen(project, len(files))) == sorted(("ObjectCreated:Put", k) for k in files)
    (source / "a.txt").write_text("alpha, changed")
    (source / "docs" / "b.txt").write_text("bravo, changed")
    rsync("--delay-updates")  # written under .~tmp~/, then renamed into place
    (up / "marker.txt").write_text("m")  # a later event: when it shows up, rsync's were handled
    wait_seen(project, len(files) + 3)
    wait_for(lambda: all_settled(project), what="every event settled")
    got = seen(project)
    assert sorted(got) == sorted([("ObjectCreated:Put", k) for k in files]
                                 + [("ObjectCreated:Put", "a.txt"), ("ObjectCreated:Put", "docs/b.txt"),
                                    ("ObjectCreated:Put", "marker.txt")])
    assert not list(up.rglob(".~tmp~"))


def test_ignored_files_fire_nothing(project: Path, daemon: Running):
    up = uploads(project)
    for name in ("notes.txt.swp", "notes.txt~", ".#notes.txt", "4913", "copy.bak", ".DS_Store"):
        (up / name).write_text("x")
    (up / "real.txt").write_text("x")
    assert wait_seen(project, 1) == [("ObjectCreated:Put", "real.txt")]


def test_names_that_only_look_like_a_tools_temporaries_are_objects(project: Path, daemon: Running):
    up = uploads(project)
    (up / "reports").mkdir()
    names = ["tmp_invoice.pdf", ".env.backup", "sedentary", "reports/tmp_results.csv", "invoice.pdf"]
    for name in names:
        (up / name).write_text("mine")
    assert sorted(wait_seen(project, len(names))) == sorted(("ObjectCreated:Put", n) for n in names)
    wait_for(lambda: all_settled(project), what="every event settled")
    assert len(seen(project)) == len(names)


def test_moves_in_and_out_of_the_bucket(project: Path, daemon: Running):
    up, outside = uploads(project), project / "outside"
    (outside / "folder" / "deep").mkdir(parents=True)
    (outside / "single.txt").write_text("s")
    (outside / "folder" / "1.txt").write_text("1")
    (outside / "folder" / "deep" / "2.txt").write_text("2")
    (outside / "folder" / "empty").mkdir()
    os.rename(outside / "single.txt", up / "single.txt")
    os.rename(outside / "folder", up / "folder")
    got = wait_seen(project, 3)
    assert sorted(got) == [("ObjectCreated:Put", "folder/1.txt"), ("ObjectCreated:Put", "folder/deep/2.txt"),
                           ("ObjectCreated:Put", "single.txt")]
    os.rename(up / "single.txt", outside / "single.txt")
    shutil.rmtree(up / "folder")
    got = wait_seen(project, 6)[3:]
    assert sorted(got) == [("ObjectRemoved:Delete", "folder/1.txt"), ("ObjectRemoved:Delete", "folder/deep/2.txt"),
                           ("ObjectRemoved:Delete", "single.txt")]


def test_a_folder_renamed_inside_the_bucket(project: Path, daemon: Running):
    up = uploads(project)
    (up / "d" / "sub").mkdir(parents=True)
    (up / "d" / "1.txt").write_text("1")
    (up / "d" / "sub" / "2.txt").write_text("2")
    wait_seen(project, 2)
    os.rename(up / "d", up / "e")
    got = wait_seen(project, 6)[2:]
    assert sorted(got) == [("ObjectCreated:Copy", "e/1.txt"), ("ObjectCreated:Copy", "e/sub/2.txt"),
                           ("ObjectRemoved:Delete", "d/1.txt"), ("ObjectRemoved:Delete", "d/sub/2.txt")]
    (up / "e" / "sub" / "3.txt").write_text("3")  # the moved folder is still watched, under its new name
    assert wait_seen(project, 7)[-1] == ("ObjectCreated:Put", "e/sub/3.txt")


def test_files_in_a_brand_new_folder_are_not_missed(project: Path, daemon: Running):
    up = uploads(project)
    deep = up / "x" / "y" / "z"
    deep.mkdir(parents=True)  # files land before the watches on the new folders exist
    names = [f"f{i}.txt" for i in range(20)]
    for name in names:
        (deep / name).write_text(name)
    got = wait_seen(project, 20)
    assert sorted(got) == sorted(("ObjectCreated:Put", f"x/y/z/{n}") for n in names)


def test_names_that_need_encoding(project: Path, daemon: Running):
    up = uploads(project)
    names = ["my photo.jpg", "a+b.txt", "100%.txt", "café ☕.txt", "deep/a/b/c/d/e/f/g.txt"]
    for name in names:
        (up / name).parent.mkdir(parents=True, exist_ok=True)
        (up / name).write_text("x")
    wait_seen(project, len(names))
    raw = {r["s3"]["object"]["key"] for r in records(project)}
    assert {"my+photo.jpg", "a%2Bb.txt", "100%25.txt", "caf%C3%A9+%E2%98%95.txt", "deep/a/b/c/d/e/f/g.txt"} == raw


def test_filters_route_events(project: Path, daemon: Running):
    photos = project / "buckets" / "photos"
    for name in ("images/cat.jpg", "images/cat.png", "docs/cat.jpg", "images/sub/dog.jpeg", "images/last.jpg"):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_text("x")
    got = wait_seen(project, 3, suffix=".jpegs")
    assert sorted(got) == [("ObjectCreated:Put", "images/cat.jpg"), ("ObjectCreated:Put", "images/last.jpg"),
                           ("ObjectCreated:Put", "images/sub/dog.jpeg")]
    config_ids = {r["s3"]["configurationId"] for r in records(project, ".jpegs")}
    assert config_ids == {"lambdad-jpegs-0", "lambdad-jpegs-1"}  # which trigger fired, as S3 names it
    assert seen(project) == []  # no trigger on this bucket for the others


def test_versioned_bucket(project: Path, daemon: Running):
    archive = project / "buckets" / "archive"
    (archive / "v.txt").write_text("1")
    wait_seen(project, 1)
    (archive / "v.txt").write_text("22")
    wait_seen(project, 2)
    (archive / "v.txt").unlink()
    got = wait_seen(project, 3)
    assert got[-1] == ("ObjectRemoved:DeleteMarkerCreated", "v.txt")
    versions = [r["s3"]["object"]["versionId"] for r in records(project)]
    assert len(set(versions)) == 3


def test_changes_while_the_daemon_was_down_are_announced_at_start(project: Path):
    up = uploads(project)
    up.mkdir(parents=True)
    (up / "before-first-start.txt").write_text("old")
    first = Running(project)
    first.wait_line("ready in ")
    (up / "kept.txt").write_text("kept")
    (up / "changed.txt").write_text("v1")
    (up / "removed.txt").write_text("bye")
    wait_seen(project, 3)
    assert first.stop() == 0
    assert ("ObjectCreated:Put", "before-first-start.txt") not in seen(project)  # a new bucket indexes quietly

    (up / "changed.txt").write_text("v2, longer")
    (up / "removed.txt").unlink()
    (up / "added.txt").write_text("new")
    second = Running(project)
    try:
        got = wait_seen(project, 6)[3:]
    finally:
        code = second.stop()
    assert code == 0
    assert sorted(got) == [("ObjectCreated:Put", "added.txt"), ("ObjectCreated:Put", "changed.txt"),
                           ("ObjectRemoved:Delete", "removed.txt")]


def test_a_killed_daemon_misses_nothing(project: Path):
    up = uploads(project)
    daemon = Running(project)
    daemon.wait_line("ready in ")
    (up / "a.txt").write_text("a")
    wait_seen(project, 1)
    wait_for(lambda: all_settled(project), what="a.txt's event settled")  # else it rightly runs again
    daemon.stop(signal.SIGKILL)
    (up / "b.txt").write_text("b")
    again = Running(project)
    try:
        got = wait_seen(project, 2)
    finally:
        code = again.stop()
    assert code == 0
    assert got == [("ObjectCreated:Put", "a.txt"), ("ObjectCreated:Put", "b.txt")]
