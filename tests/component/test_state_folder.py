"""The state folder in-process: private whatever the umask, a deleted folder stops the daemon, damaged
store files are set aside and said, and daemon.json can still be rewritten when no new file fits."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from lambdad.daemon import Daemon, DaemonState
from lambdad.errors import EXIT_ERROR
from lambdad.health import Failure
from lambdad.manifest.model import Endpoint, Function, Manifest
from lambdad.runtime.functions import Functions
from lambdad.statedir import DaemonInfo, StateDir
from lambdad.store import Store, StoreUnavailable, invocations
from lambdad.store.salvage import check_wal, set_aside_damage
from tests.component.twins import FakeSpawner
from tests.helpers import FakeClock, TextSink


def make_daemon(tmp_path: Path, clock: FakeClock) -> tuple[Daemon, TextSink]:
    fn = Function(name="f", handler="app.handler", code=tmp_path, python="python3")
    manifest = Manifest(file=tmp_path / "lambdad.yaml", functions={"f": fn}, api=Endpoint("127.0.0.1", 0),
                        source="version: 1\n")
    out = TextSink()
    daemon = Daemon(manifest, StateDir(tmp_path / "state"), out=out, clock=clock,
                    make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()))
    return daemon, out


def stop(daemon: Daemon, clock: FakeClock) -> None:
    if daemon.status is DaemonState.running:
        daemon.begin_stop("test")
    while daemon.status is not DaemonState.stopped:
        clock.advance(0.05)
        daemon.step(clock.monotonic())


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_state_folder_and_its_files_are_the_owners_alone_whatever_the_umask(tmp_path: Path, umask: int):
    clock = FakeClock()
    old = os.umask(umask)
    try:
        daemon, _ = make_daemon(tmp_path, clock)
        daemon.start()
        try:
            daemon.functions.logbook.note("f", "a line")
            daemon.functions.flush_logs()
            state = tmp_path / "state"
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [*state.iterdir(), *(state / "logs").iterdir()]}
            assert {"store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm", "daemon.json", "running.yaml",
                    "daemon.lock", "logs", "f.log"} <= set(files)
            assert files == {name: 0o700 if name == "logs" else 0o600 for name in files}
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
        finally:
            stop(daemon, clock)
    finally:
        os.umask(old)


def test_an_existing_state_folder_is_made_private(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "logs").mkdir(mode=0o755)
    Store.in_state_folder(state).close()
    os.chmod(state / "store.sqlite3", 0o644)
    store = Store.in_state_folder(state)
    store.close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "store.sqlite3").stat().st_mode) == 0o600


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_state_folder_deleted_or_replaced_while_running_stops_the_daemon_with_an_error(tmp_path: Path, how: str):
    clock = FakeClock()
    daemon, out = make_daemon(tmp_path, clock)
    daemon.start()
    daemon.step(clock.monotonic())
    assert daemon.status is DaemonState.running
    shutil.rmtree(tmp_path / "state")
    if how == "replaced":  # (another daemon may start there: the stopping one must leave it alone)
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "daemon.json").write_text("{}")
    clock.advance(1.0)
    daemon.step(clock.monotonic())
    assert daemon.status is not DaemonState.running
    assert f"error: the state folder {tmp_path / 'state'} was {how}" in out.text
    with pytest.raises(StoreUnavailable, match="accepts nothing more"):  # an async Invoke gets this error
        daemon.dispatcher.invocations.enqueue("f", b"{}")
    stop(daemon, clock)
    assert daemon.exit_code == EXIT_ERROR
    if how == "replaced":
        assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["daemon.json"]


def test_a_store_file_replaced_while_running_stops_the_daemon(tmp_path: Path):
    clock = FakeClock()
    daemon, out = make_daemon(tmp_path, clock)
    daemon.start()
    store = tmp_path / "state" / "store.sqlite3"
    os.replace(store, store.with_name("elsewhere"))
    clock.advance(1.0)
    daemon.step(clock.monotonic())
    assert f"error: {store} was deleted while lambdad ran" in out.text
    stop(daemon, clock)
    assert daemon.exit_code == EXIT_ERROR


def used_state_folder(tmp_path: Path) -> Path:
    """A state folder a daemon ran on, with one queued event."""
    clock = FakeClock()
    daemon, _ = make_daemon(tmp_path, clock)
    daemon.start()
    daemon.dispatcher.stop_claiming()
    daemon.dispatcher.invocations.enqueue("f", b"{}")
    stop(daemon, clock)
    return tmp_path / "state"


def test_a_store_truncated_to_0_bytes_is_set_aside_and_said_at_start(tmp_path: Path):
    state = used_state_folder(tmp_path)
    (state / "store.sqlite3").write_bytes(b"")
    clock = FakeClock()
    daemon, out = make_daemon(tmp_path, clock)
    daemon.start()
    try:
        kept = [p.name for p in state.iterdir() if ".damaged-" in p.name]
        assert kept == ["store.sqlite3.damaged-20231114T221320Z"]
        assert (f"warning: the store {state / 'store.sqlite3'} was empty (0 bytes) although this state folder was "
                "used before: its queued events, messages and indexes are lost; starting with a fresh store (the "
                f"damaged files are kept in {state}: store.sqlite3.damaged-20231114T221320Z)") in out.text
    finally:
        stop(daemon, clock)


def test_a_fresh_state_folder_says_nothing(tmp_path: Path):
    clock = FakeClock()
    daemon, out = make_daemon(tmp_path, clock)
    daemon.start()
    stop(daemon, clock)
    assert "damaged" not in out.text and "empty" not in out.text


def wal_of_ten_commits(folder: Path) -> tuple[Path, bytes]:
    """A database whose ten commits are all still in its write-ahead log (as after a kill -9)."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "live.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    for _ in range(9):
        conn.execute("INSERT INTO t VALUES (?)", (os.urandom(3000),))
    shutil.copy(folder / "live.db", folder / "store.sqlite3")
    wal = (folder / "live.db-wal").read_bytes()
    conn.close()
    return folder / "store.sqlite3", wal


def rows(db: Path) -> int | str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    except sqlite3.DatabaseError as e:
        return str(e)
    finally:
        conn.close()


PAGE_FRAME = 24 + 4096


@pytest.mark.parametrize(("damage_at", "lost", "left"), [
    (None, 0, 9),  # intact: nothing to say
    (32 + 5 * PAGE_FRAME + 500, 8, 1),  # a page of the 6th frame: SQLite stops there, 8 later commits are lost
    (20, 10, "no such table: t"),  # the header's salt: SQLite ignores the whole log
])
def test_a_damaged_wal_is_copied_aside_and_said(tmp_path: Path, damage_at, lost: int, left):
    store, wal = wal_of_ten_commits(tmp_path / "state")
    data = bytearray(wal)
    if damage_at is not None:
        data[damage_at] ^= 0xFF
    Path(f"{store}-wal").write_bytes(data)
    assert check_wal(bytes(data)).lost_commits == lost
    said = set_aside_damage(store, 1_700_000_000.0)
    assert rows(store) == left  # what SQLite itself makes of it
    if not lost:
        assert said == [] and not list(tmp_path.glob("state/*damaged*"))
        return
    copy = store.with_name("store.sqlite3-wal.damaged-20231114T221320Z")
    assert copy.read_bytes() == bytes(data) and stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert said == [f"the store's write-ahead log {store}-wal is damaged: {lost} committed transaction(s) in it "
                    f"cannot be read and are lost (SQLite keeps the {check_wal(bytes(data)).valid} good frame(s) "
                    f"before the damage); a copy of the log is kept as {copy}"]


def test_daemon_json_is_rewritten_in_place_when_no_new_file_can_be_written(tmp_path: Path):
    state = StateDir(tmp_path / "state")
    state.lock()
    state.write_info(DaemonInfo(pid=1))
    assert (tmp_path / "state" / "daemon.json").stat().st_size == 4096  # the room kept for later
    (tmp_path / "state" / "daemon.json.tmp").mkdir()  # no new file can be made there now
    failing = DaemonInfo(pid=1, failing={"buckets": Failure("database or disk is full", 0.0, 0)})
    state.write_info(failing)
    assert state.read_info() == failing
    with pytest.raises(OSError):  # (what does not fit in the room is not written half)
        state.write_info(DaemonInfo(pid=1, config_errors=["y" * 5000]))
    assert json.loads((tmp_path / "state" / "daemon.json").read_text())["pid"] == 1
    state.unlock()


def test_status_lists_what_fails(tmp_path: Path, capsys):
    from lambdad.cli.status import _print_daemon

    _print_daemon({"running": True, "pid": 7, "failing": {"buckets": {
        "error": "the store cannot be written: database or disk is full", "since": 0, "attempts": 3}}})
    out = capsys.readouterr().out
    assert "failing: the bucket watcher: the store cannot be written: database or disk is full (since " in out
    assert "3 attempt(s); retrying, nothing accepted is lost)" in out


def test_events_are_kept_across_a_clean_restart(tmp_path: Path):
    """(the damage checks leave a good store alone)"""
    state = used_state_folder(tmp_path)
    store = Store.in_state_folder(state)
    with store.reading() as tx:
        assert invocations.counts(tx)["f"].queued == 1
    store.close()
