"""The watcher with real inotify, in-process: a real kernel queue overflow, and new folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from lambdad.manifest.model import Bucket, Function, Manifest, S3Trigger
from lambdad.store import Store
from lambdad.triggers.buckets.sync import BucketSync
from lambdad.triggers.buckets.watch import BucketWatcher
from tests.helpers import FakeClock, wait_for


def make(tmp_path: Path) -> tuple[BucketWatcher, Store, Path, list[str]]:
    root = tmp_path / "bucket"
    root.mkdir()
    trigger = S3Trigger("b", ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), id="all")
    manifest = Manifest(tmp_path / "lambdad.yaml", functions={"f": Function("f", "a.h", tmp_path, "python3",
                        events=(trigger,))}, buckets={"b": Bucket("b", root)})
    store = Store.in_state_folder(tmp_path / "state")
    warnings: list[str] = []
    sync = BucketSync(manifest.buckets["b"], manifest, store, FakeClock(), warn=warnings.append)
    return BucketWatcher([sync], store, warn=warnings.append), store, root, warnings


def announced(store: Store) -> Counter:
    with store.reading() as tx:
        rows = tx.execute("SELECT payload FROM events").fetchall()
    return Counter(
        (json.loads(p)["Records"][0]["eventName"], json.loads(p)["Records"][0]["s3"]["object"]["key"]) for (p,) in rows
    )


def test_a_kernel_queue_overflow_is_answered_by_a_rescan_and_nothing_is_missed_or_doubled(tmp_path: Path):
    watcher, store, root, warnings = make(tmp_path)
    watcher.start()
    try:
        watch = watcher._watches[str(root)]
        total = 12_000  # two events each (create, close): well past the kernel's 16,384-event queue
        with watch._lock:  # stall the inotify reader inside our callback; the kernel queue fills up
            for i in range(total):
                (root / f"f{i:05d}.txt").write_text("x")
        wait_for(lambda: any("dropped file events" in w for w in warnings), timeout=30, what="the overflow")
        wait_for(lambda: sum(announced(store).values()) >= total, timeout=60, what="every file announced")
        assert watcher.wait_idle(30)
        counts = announced(store)
        assert len(counts) == total and set(counts.values()) == {1}  # each file once, none twice
    finally:
        watcher.stop()
        store.close()


def test_files_written_fast_into_new_folders_are_all_seen(tmp_path: Path):
    watcher, store, root, _ = make(tmp_path)
    watcher.start()
    try:
        expected = set()
        for d in range(20):
            folder = root / f"d{d}" / "inner"
            folder.mkdir(parents=True)
            for f in range(5):
                (folder / f"{f}.txt").write_text("x")
                expected.add(("ObjectCreated:Put", f"d{d}/inner/{f}.txt"))
        def missing() -> list[str]:
            return sorted(k for _, k in expected - set(announced(store)))

        try:
            wait_for(lambda: not missing(), timeout=30, what="every file in the new folders")
        except AssertionError as e:  # what is missing at the end, not at the start of the wait
            raise AssertionError(f"{e} (missing {missing()})") from None
        assert watcher.wait_idle(10)
        assert set(announced(store).values()) == {1}
    finally:
        watcher.stop()
        store.close()


def test_an_editor_saving_by_renaming_the_old_file_away_is_one_put(tmp_path: Path):
    watcher, store, root, _ = make(tmp_path)
    watcher.start()
    try:
        path = root / "notes.txt"
        path.write_text("v1")
        wait_for(lambda: announced(store) == Counter({("ObjectCreated:Put", "notes.txt"): 1}), what="the first Put")
        os.rename(path, root / "notes.txt~")  # vim's and emacs' save: the old file becomes the backup,
        path.write_text("v2")  # the new content is written under the name,
        (root / "notes.txt~").unlink()  # and the backup goes
        (root / "marker.txt").write_text("m")
        wait_for(lambda: ("ObjectCreated:Put", "marker.txt") in announced(store), what="the marker")
        assert watcher.wait_idle(10)  # (after the second look at notes.txt)
        assert announced(store) == Counter({("ObjectCreated:Put", "notes.txt"): 2,
                                            ("ObjectCreated:Put", "marker.txt"): 1})
    finally:
        watcher.stop()
        store.close()


@pytest.mark.skipif(shutil.which("install") is None, reason="the install binary is not installed")
def test_install_over_an_object_is_a_put_not_a_delete(tmp_path: Path):
    watcher, store, root, _ = make(tmp_path)
    watcher.start()
    try:
        source = tmp_path / "source.txt"
        for n in range(1, 6):
            source.write_text(f"version {n}")
            subprocess.run(["install", "-m", "644", str(source), str(root / "tool.cfg")], check=True, timeout=30)
            wait_for(lambda n=n: announced(store)[("ObjectCreated:Put", "tool.cfg")] == n, what=f"Put {n}")
        assert watcher.wait_idle(10)  # (after the second look at each unlinked file)
        assert announced(store) == Counter({("ObjectCreated:Put", "tool.cfg"): 5})  # install unlinks, then creates
        (root / "tool.cfg").unlink()
        wait_for(lambda: ("ObjectRemoved:Delete", "tool.cfg") in announced(store), what="the Delete")
    finally:
        watcher.stop()
        store.close()


def test_an_event_whose_handling_raises_does_not_end_the_inotify_thread(tmp_path: Path):
    """One inotify thread serves every bucket and the reload watcher: a failure on it is one rescan."""
    from watchdog.observers.inotify_c import InotifyFD

    from lambdad.triggers.buckets.inotify import Hint, TreeWatch

    fd = InotifyFD()
    fd.start()
    got: list[Hint] = []

    def emit(hint: Hint) -> None:
        got.append(hint)
        if len(got) == 1:
            raise RuntimeError("a bug while handling an event")

    watch = TreeWatch(fd, str(tmp_path), emit)
    watch.start()
    try:
        (tmp_path / "a").write_text("a")
        wait_for(lambda: [h.op for h in got] == ["written", "rescan"], what="a rescan instead")
        (tmp_path / "b").write_text("b")
        wait_for(lambda: Hint("written", str(tmp_path / "b")) in got, what="the next event")
    finally:
        watch.stop()
        fd.stop()


def test_running_out_of_inotify_watches_is_said_once(tmp_path: Path):
    import errno

    from lambdad.triggers.buckets.inotify import TreeWatch

    class NoWatchesLeft:
        def add_callback(self, path, mask, callback, id_):
            raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    warnings: list[str] = []
    TreeWatch(NoWatchesLeft(), str(tmp_path), lambda hint: None, warn=warnings.append).start()
    assert len(warnings) == 1 and "limit on inotify watches is reached" in warnings[0]
