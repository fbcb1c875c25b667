"""`lambdad up` routes Python logging to its console: lambdad's INFO lines, a loop guard's exception as
one line plus its traceback, and no third-party chatter. The daemon runs in-process (`Daemon.run`
on the main thread, stopped by SIGTERM once the check is done)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lambdad.console import Console, ConsoleHandler, console_logging
from lambdad.daemon import Daemon
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from lambdad.statedir import StateDir
from lambdad.triggers.mappings.sqs import SqsPoller
from tests.component.test_schedules import HOURLY, World, after_downtime
from tests.component.twins import FakeSpawner
from tests.helpers import FakeClock, TextSink, wait_for

MANIFEST = """\
version: 1
api: {port: 0}
functions:
  f:
    handler: app.handler
    code: .
    events:
      - schedule: {name: sweep, expression: "rate(5 minutes)"}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    return tmp_path


@pytest.fixture
def harmless_sigterm() -> Iterator[None]:
    """A SIGTERM that lands after the daemon restored the handlers must not end the test run."""
    old = signal.signal(signal.SIGTERM, lambda *_: None)
    yield
    signal.signal(signal.SIGTERM, old)


def serve(project: Path, while_ready: Callable[[TextSink], None]) -> str:
    """Run the daemon as `lambdad up` does; `while_ready(out)` runs on another thread once it is
    ready, then SIGTERM stops it. Returns everything the console showed."""
    out = TextSink()
    daemon = Daemon(load_manifest(project / "lambdad.yaml"), StateDir(project / "state"), out=out, clock=FakeClock(),
                    make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()))
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            wait_for(lambda: "ready in " in out.text, what="the daemon to be ready")
            while_ready(out)
        except BaseException as e:  # (raised again on the main thread, once the daemon stopped)
            failures.append(e)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        assert daemon.run() == 0
    finally:
        driver.join(15)
    if failures:
        raise failures[0]
    return out.text


def console_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, ConsoleHandler)]


def test_a_lambdad_info_line_reaches_the_console_and_third_party_chatter_does_not(
        project: Path, harmless_sigterm: None):
    said = "schedule sweep missed its run of 2024-01-01T10:00:00Z while lambdad was down: running it once now"

    def log_info(out: TextSink) -> None:
        logging.getLogger("lambdad.triggers.schedules.service").info(said)
        logging.getLogger("apscheduler.scheduler").info("Added job \"sweep\" to job store \"default\"")
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        wait_for(lambda: "warning: uvicorn: Invalid HTTP request received." in out.text, what="the warning")

    assert not console_handlers()  # nothing is configured at import: other commands print as before
    lines = serve(project, log_info).splitlines()
    assert said in lines
    assert not [line for line in lines if "apscheduler" in line or "Added job" in line or "Started server" in line]
    assert lines[-2:] == ["SIGTERM: stopping (Ctrl-C again to force)", "stopped"]
    assert not console_handlers()
    assert logging.getLogger("lambdad").level == logging.NOTSET  # (levels put back)


def test_a_normal_run_shows_only_the_daemon_s_own_lines(project: Path, harmless_sigterm: None):
    lines = serve(project, lambda out: None).splitlines()
    ready = next(i for i, line in enumerate(lines) if line.startswith("ready in "))
    assert lines[ready + 1:] == ["SIGTERM: stopping (Ctrl-C again to force)", "stopped"]
    assert not [line for line in lines if line.startswith(("warning:", "error:", "Traceback"))]


def test_an_exception_in_a_loop_guard_is_one_line_then_its_traceback(
        project: Path, harmless_sigterm: None, monkeypatch: pytest.MonkeyPatch):
    def step(self: SqsPoller, now: float) -> float:
        raise RuntimeError("boom")

    monkeypatch.setattr(SqsPoller, "step", step)
    text = serve(project, lambda out: wait_for(lambda: "the SQS poller failed: boom" in out.text, what="the warning"))
    lines = text.splitlines()
    first = lines.index("error: the SQS poller failed unexpectedly (RuntimeError: boom)")
    end = lines.index("RuntimeError: boom", first)
    assert lines[first + 1] == "Traceback (most recent call last):"
    assert all(line.startswith("  ") for line in lines[first + 2:end])  # the traceback, nothing in between
    assert 'in step\n    raise RuntimeError("boom")' in text
    assert any(line.startswith("warning: the SQS poller failed: boom; retrying with backoff") for line in lines[end:])
    assert text.count("RuntimeError: boom") == 2  # said once (the first failure), not at every retry


def test_a_schedule_s_catch_up_is_said_on_the_console(tmp_path: Path):
    store, clock = after_downtime(tmp_path)
    out = TextSink()
    with console_logging(Console(out)):
        World(tmp_path, HOURLY, store=store, clock=clock).service.start()
    store.close()
    assert out.text == ("schedule hourly missed its run of 2024-01-01T15:00:00Z while lambdad was down: running it "
                        "once now\n")
