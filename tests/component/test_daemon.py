"""The daemon's loop logic with a fake clock and in-memory environments: stop stages and the grace period."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from lambdad.daemon import Daemon, DaemonState
from lambdad.errors import FunctionNotFound
from lambdad.manifest import load_manifest
from lambdad.manifest.model import Endpoint, Function, Manifest
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.statedir import StateDir
from tests.component.twins import FakeSpawner
from tests.helpers import FakeClock, TextSink, wait_for


def start(tmp_path: Path, clock: FakeClock, spawner: FakeSpawner, grace_s: float = 10.0) -> tuple[Daemon, TextSink]:
    fn = Function(name="f", handler="app.handler", code=tmp_path, python="python3")
    manifest = Manifest(file=tmp_path / "lambdad.yaml", functions={"f": fn}, api=Endpoint("127.0.0.1", 0))
    out = TextSink()
    daemon = Daemon(
        manifest, StateDir(tmp_path / "state"), out=out, clock=clock, grace_s=grace_s,
        make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=spawner),
    )
    daemon.start()
    return daemon, out


def test_grace_period_runs_on_the_clock_then_forces(tmp_path: Path):
    clock = FakeClock()
    spawner = FakeSpawner(gate=threading.Event())
    daemon, out = start(tmp_path, clock, spawner)
    results = []
    t = threading.Thread(target=lambda: results.append(daemon.functions.invoke("f", b"{}")))
    t.start()
    wait_for(lambda: spawner.spawned and spawner.spawned[0].entered.is_set(), what="the invocation to start")
    daemon.handle_signal(signal.SIGTERM)
    assert daemon.status is DaemonState.stopping
    clock.advance(9.9)
    daemon.step(clock.monotonic())
    assert daemon.status is DaemonState.stopping
    clock.advance(0.1)
    daemon.step(clock.monotonic())
    t.join(5)
    assert daemon.status is DaemonState.stopped
    assert daemon.exit_code == 0
    assert "grace period over: killing 1 running invocation(s)" in out.text
    assert spawner.spawned[0].killed and results[0].outcome is Outcome.crashed


def test_no_grace_period_still_says_it_waits_then_kills_at_the_next_round(tmp_path: Path):
    """`--grace 0`: the signal only stops the intake; the kill is the grace period ending, said as such."""
    clock = FakeClock()
    spawner = FakeSpawner(gate=threading.Event())
    daemon, out = start(tmp_path, clock, spawner, grace_s=0.0)
    results = []
    t = threading.Thread(target=lambda: results.append(daemon.functions.invoke("f", b"{}")))
    t.start()
    wait_for(lambda: spawner.spawned and spawner.spawned[0].entered.is_set(), what="the invocation to start")
    daemon.handle_signal(signal.SIGTERM)
    assert daemon.status is DaemonState.stopping and not spawner.spawned[0].killed
    assert "SIGTERM: stopping; waiting up to 0s for 1 running invocation(s)" in out.text
    daemon.step(clock.monotonic())
    t.join(5)
    assert daemon.status is DaemonState.stopped
    assert "grace period over: killing 1 running invocation(s)" in out.text
    assert spawner.spawned[0].killed and results[0].outcome is Outcome.crashed


def test_stop_with_nothing_running_is_immediate(tmp_path: Path):
    clock = FakeClock()
    daemon, out = start(tmp_path, clock, FakeSpawner())
    assert daemon.status is DaemonState.running
    assert (tmp_path / "state" / "daemon.json").exists()
    daemon.handle_signal(signal.SIGINT)
    daemon.step(clock.monotonic())
    assert daemon.status is DaemonState.stopped
    assert out.text.splitlines()[-2:] == ["SIGINT: stopping (Ctrl-C again to force)", "stopped"]
    assert not (tmp_path / "state" / "daemon.json").exists()


def test_sighup_reloads_the_saved_manifest_and_keeps_running(tmp_path: Path):
    """The loop is never stepped here, so the file watcher cannot be what applies the change: the signal is."""
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(
        "version: 1\napi: {port: 0}\nfunctions:\n  f: {handler: app.handler, code: ., timeout: 3}\n")
    out = TextSink()
    clock = FakeClock()
    daemon = Daemon(
        load_manifest(tmp_path / "lambdad.yaml"), StateDir(tmp_path / "state"), out=out, clock=clock,
        make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()),
    )
    daemon.start()
    try:
        with pytest.raises(FunctionNotFound):
            daemon.functions.invoke("g", b"{}")
        (tmp_path / "lambdad.yaml").write_text(
            "version: 1\napi: {port: 0}\nfunctions:\n  f: {handler: app.handler, code: ., timeout: 7}\n"
            "  g: {handler: app.handler, code: .}\n")
        daemon.handle_signal(signal.SIGHUP)
        assert daemon.status is DaemonState.running
        assert daemon.manifest.functions["f"].timeout_s == 7
        assert daemon.functions.invoke("g", b'{"n": 1}').outcome is Outcome.success  # the added function runs
        assert any(line.startswith("reload (SIGHUP): ") for line in out.text.splitlines())
    finally:
        daemon.handle_signal(signal.SIGTERM)
        daemon.step(clock.monotonic())
    assert daemon.status is DaemonState.stopped


def test_a_part_that_fails_to_start_stops_what_started_and_frees_the_state_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from lambdad.daemon import components

    def refuse(self) -> None:
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(components.BucketsPart, "start", refuse)
    with pytest.raises(OSError, match="inotify watch limit"):
        start(tmp_path, FakeClock(), FakeSpawner())
    daemon_threads = {"dispatcher", "outbox", "sqs", "streams"}
    wait_for(lambda: not daemon_threads & {t.name for t in threading.enumerate()},
             what="the threads the started parts ran to end")
    again = StateDir(tmp_path / "state")
    again.lock()  # free: no other daemon holds it
    again.unlock()


def test_a_signal_after_the_stop_changes_nothing(tmp_path: Path):
    clock = FakeClock()
    daemon, out = start(tmp_path, clock, FakeSpawner())
    daemon.handle_signal(signal.SIGTERM)
    daemon.step(clock.monotonic())
    daemon.handle_signal(signal.SIGTERM)  # `timeout` signals the process and then its group
    assert daemon.status is DaemonState.stopped and daemon.exit_code == 0
    assert out.text.count("stopped") == 1


class Recorded:
    """A part of the daemon that notes each lifecycle call before passing it on."""

    def __init__(self, name: str, part: object, calls: list[tuple[str, str]]) -> None:
        self._name, self._part, self._calls = name, part, calls

    def __getattr__(self, attr: str):
        return getattr(self._part, attr)

    def start(self) -> None:
        self._calls.append(("start", self._name))
        self._part.start()

    def apply(self, change) -> None:
        self._calls.append(("apply", self._name))
        self._part.apply(change)

    def drain(self) -> None:
        self._calls.append(("drain", self._name))
        self._part.drain()

    def stop(self, force: bool) -> None:
        self._calls.append(("stop", self._name))
        self._part.stop(force)


PARTS = ["store", "console", "functions", "dispatcher", "sqs", "streams", "buckets", "schedules", "reload_watch",
         "http"]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every lifecycle call on the parts the daemon builds, in order."""
    from dataclasses import replace

    import lambdad.daemon.lifecycle

    calls: list[tuple[str, str]] = []
    built = lambdad.daemon.lifecycle.build

    def build(manifest, ctx):
        parts = built(manifest, ctx)
        return replace(parts, **{n: Recorded(n, getattr(parts, n), calls) for n in PARTS})

    monkeypatch.setattr(lambdad.daemon.lifecycle, "build", build)
    return calls


def test_parts_start_in_order_and_drain_and_stop_in_reverse(tmp_path: Path, recorded: list[tuple[str, str]]):
    clock = FakeClock()
    daemon, _ = start(tmp_path, clock, FakeSpawner())
    assert recorded == [("start", n) for n in PARTS]
    recorded.clear()
    daemon.handle_signal(signal.SIGTERM)
    daemon.step(clock.monotonic())
    assert daemon.status is DaemonState.stopped
    assert recorded == [("drain", n) for n in reversed(PARTS)] + [("stop", n) for n in reversed(PARTS)]


def test_a_reload_is_one_change_applied_to_every_part_in_order(tmp_path: Path, recorded: list[tuple[str, str]]):
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text("version: 1\napi: {port: 0}\nfunctions:\n  f: {handler: app.handler}\n")
    clock = FakeClock()
    daemon = Daemon(load_manifest(tmp_path / "lambdad.yaml"), StateDir(tmp_path / "state"), out=TextSink(),
                    clock=clock, make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()))
    daemon.start()
    recorded.clear()
    try:
        (tmp_path / "lambdad.yaml").write_text(
            "version: 1\napi: {port: 0}\nfunctions:\n  f: {handler: app.handler, timeout: 7}\n")
        assert daemon.reload("saved") is not None
        assert recorded == [("apply", n) for n in PARTS]
        assert daemon.manifest.functions["f"].timeout_s == 7
    finally:
        daemon.handle_signal(signal.SIGTERM)
        daemon.step(clock.monotonic())
