"""A running daemon saved with a hostile manifest keeps running its previous configuration and says why."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from lambdad.daemon import Daemon, DaemonState
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from lambdad.statedir import StateDir
from tests.component.twins import FakeSpawner
from tests.helpers import FakeClock, TextSink

GOOD = """\
version: 1
api: {port: 0}
queues:
  q: {visibility_timeout: 30s}
functions:
  f: {handler: app.handler, code: ., timeout: 3}
"""


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(GOOD)
    out = TextSink()
    d = Daemon(
        load_manifest(tmp_path / "lambdad.yaml"), StateDir(tmp_path / "state"), out=out, clock=FakeClock(),
        make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()),
    )
    d.start()
    d.out = out  # type: ignore[attr-defined]
    yield d
    if d.status is not DaemonState.stopped:
        d.handle_signal(signal.SIGTERM)
        d.step(d.clock.monotonic())


def _write(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


def _garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 16)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


HOSTILE = {
    "309-digit-int": (_write(GOOD.replace("30s", "9" * 309)), "lambdad.yaml:4:27: queues.q.visibility_timeout: a "
                      "309-digit number is too large for a duration"),
    "nan": (_write(GOOD.replace("30s", ".nan")), "lambdad.yaml:4:27: queues.q.visibility_timeout: nan is not a "
            "finite number"),
    "garbage-bytes": (_garbage, "lambdad.yaml:2:118: the manifest is not UTF-8 text (byte 0x80)"),
    "a-folder": (_folder, "lambdad.yaml: cannot read manifest: it is a folder, not a file"),
    "a-fifo": (_fifo, "lambdad.yaml: cannot read manifest: it is not a regular file"),
    "deleted": (Path.unlink, "lambdad.yaml: cannot read manifest: No such file or directory"),
}


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_save_keeps_the_previous_configuration(daemon: Daemon, tmp_path: Path, hostile: str):
    spoil, problem = HOSTILE[hostile]
    before = daemon.manifest
    spoil(tmp_path / "lambdad.yaml")
    assert daemon.reload("saved") is None
    assert daemon.status is DaemonState.running
    assert daemon.manifest is before and daemon.manifest.queues["q"].visibility_timeout_s == 30.0
    assert daemon.config_errors == [problem]
    assert problem in daemon.out.text.splitlines()  # type: ignore[attr-defined]
    info = json.loads((tmp_path / "state" / "daemon.json").read_text())
    assert info["config"] == "stale" and info["config_errors"] == [problem]
    # Fixed again: the next save applies, and the problems are gone.
    path = tmp_path / "lambdad.yaml"
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.write_text(GOOD.replace("30s", "45s"))
    assert daemon.reload("saved") is not None
    assert daemon.manifest.queues["q"].visibility_timeout_s == 45.0 and daemon.config_errors == []


def test_a_bug_in_loading_is_reported_not_fatal(daemon: Daemon, monkeypatch: pytest.MonkeyPatch):
    """Whatever goes wrong while loading (here: a bug, simulated), the daemon stays up on its configuration."""
    import lambdad.daemon.reloading

    def broken(path: Path):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(lambdad.daemon.reloading, "load_manifest", broken)
    before = daemon.manifest
    assert daemon.reload("SIGHUP") is None
    assert daemon.status is DaemonState.running and daemon.manifest is before
    assert daemon.config_errors == ["lambdad.yaml: the manifest could not be loaded (RecursionError: maximum "
                                    "recursion depth exceeded); please report this as a bug in lambdad"]
    daemon.handle_signal(signal.SIGHUP)  # the signal path too: it reloads, fails the same way, runs on
    assert daemon.status is DaemonState.running and daemon.manifest is before
    assert daemon.out.text.count("reload (SIGHUP): lambdad.yaml: the manifest could not be loaded") == 2  # type: ignore[attr-defined]


def test_the_loop_survives_a_hostile_save(daemon: Daemon, tmp_path: Path):
    """Through the loop itself, as a save is noticed: `step` returns, the daemon runs on."""
    (tmp_path / "lambdad.yaml").write_text(GOOD.replace("30s", "9" * 309))
    assert daemon.reload_watch is not None
    daemon.reload_watch.due = lambda now: (True, {})  # type: ignore[method-assign]  # a save was seen
    wait = daemon.step(daemon.clock.monotonic())
    assert wait >= 0 and daemon.status is DaemonState.running
    assert daemon.config_errors and "309-digit" in daemon.config_errors[0]


def test_a_reload_reports_a_yaml_syntax_error_where_validate_does(daemon: Daemon, tmp_path: Path):
    """The console shows both places of an unclosed bracket, as `lambdad validate` does."""
    (tmp_path / "lambdad.yaml").write_text(GOOD.replace("{visibility_timeout: 30s}", "{visibility_timeout: 30s"))
    assert daemon.reload("saved") is None
    expected = [
        "lambdad.yaml:4:6: YAML syntax error: this '{' is never closed (reading stopped at line 5, column 10)",
        "lambdad.yaml:5:10: YAML syntax error: did not find expected ',' or '}' (the '{' at line 4, column 6 is "
        "never closed)",
    ]
    assert daemon.config_errors == expected
    lines = daemon.out.text.splitlines()  # type: ignore[attr-defined]
    assert all(line in lines for line in expected)
