"""Links in a bucket's folder: a file is read for its ETag only if it is inside the bucket, however it is reached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.component.test_bucket_sync import World


@pytest.fixture
def w(tmp_path: Path):
    world = World(tmp_path)
    yield world
    world.store.close()


def test_a_linked_folder_does_not_make_files_outside_the_bucket_objects(w: World, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not yours")
    os.symlink(outside, w.root / "sub")  # the watcher may report a path under it (or one raced in)
    w.sync.written(str(w.root / "sub" / "secret.txt"))
    assert w.new_events() == []
    w.sync.scan()  # a scan does not descend into the link either
    assert w.new_events() == []


def test_a_link_to_a_file_inside_the_bucket_through_a_linked_folder_is_an_object(w: World):
    (w.root / "real").mkdir()
    (w.root / "real" / "a.txt").write_bytes(b"inside")
    os.symlink(w.root / "real", w.root / "alias")  # a link inside the bucket, to a folder inside it
    w.sync.written(str(w.root / "alias" / "a.txt"))
    assert w.new_events() == [("on_created", "ObjectCreated:Put", "alias/a.txt")]
