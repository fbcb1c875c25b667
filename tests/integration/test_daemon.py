"""`lambdad up` as a real process: start, summary, ready, refuse a second daemon, stop cleanly."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lambdad.daemon import Daemon, DaemonState
from lambdad.errors import DaemonAlreadyRunning
from lambdad.manifest import load_manifest
from lambdad.runtime.invocation import Outcome
from lambdad.statedir import DaemonInfo, StateDir
from tests.fixtures.manifests import DAEMON_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import TextSink, lambdad_cmd, wait_for, write_manifest


class Running:
    """A `lambdad up` subprocess whose output is collected line by line."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            lambdad_cmd("up", *args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 15.0) -> str:
        def found() -> str | None:
            line = next((line for line in self.lines if line.startswith(prefix)), None)
            if line is None and self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"the daemon exited ({self.proc.returncode}) printing: {self.lines}")
            return line

        try:
            return wait_for(found, timeout, what=f"a line starting with {prefix!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the daemon printed: {self.lines}") from None

    def tree(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@contextlib.contextmanager
def serving(project: Path, *args: str) -> Iterator[Running]:
    """A daemon that is ready, stopped cleanly (exit 0) at the end."""
    running = Running(project, *args)
    try:
        running.wait_line("ready in ")
        yield running
    finally:
        code = running.stop()
    assert code == 0


project = project_with(DAEMON_MANIFEST, record_file=None)


def gone(processes: list[psutil.Process]) -> bool:
    alive = []
    for p in processes:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return not alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_shows_the_summary_then_ready_and_stops_cleanly(project: Path, sig: signal.Signals):
    daemon = Running(project)
    try:
        daemon.wait_line("ready in ")
        assert daemon.lines[0].startswith("lambdad 0.1.0  manifest lambdad.yaml  state .lambdad")
        assert daemon.lines[1].split() == [
            "function", "behave", daemon.lines[1].split()[2], "timeout", "3s", "memory", "128MB", "concurrency", "32",
            "(shared)",
        ]
        assert daemon.lines[2].split()[:5] == ["s3", "uploads", "ObjectCreated:*", "prefix", "images/"]
        assert daemon.lines[3].split()[:4] == ["schedule", "sweep", "rate(5", "minutes)"]
        info = json.loads((project / ".lambdad" / "daemon.json").read_text())
        assert info["pid"] == daemon.proc.pid
        children = wait_for(daemon.tree, what="the runtime process to start")
    finally:
        code = daemon.stop(sig)
    assert code == 0
    assert daemon.lines[-1] == "stopped"
    assert any(line.startswith(f"{sig.name}: stopping") for line in daemon.lines)
    wait_for(lambda: gone(children), what="no process left behind")
    assert not (project / ".lambdad" / "daemon.json").exists()


def test_a_second_daemon_on_the_same_state_folder_refuses(project: Path):
    first = Running(project)
    try:
        first.wait_line("ready in ")
        second = subprocess.run(lambdad_cmd("up"), cwd=project, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert second.stderr == (
            f"lambdad: lambdad is already running on state folder {project / '.lambdad'} (pid {first.proc.pid}); "
            "stop it first\n"
        )
        # a different state folder is a different daemon
        other = Running(project, "--state-dir", str(project / "other-state"))
        other.wait_line("ready in ")
        assert other.stop() == 0
    finally:
        code = first.stop()
    assert code == 0


def test_sigkill_leaves_no_process_and_no_stale_lock(project: Path):
    daemon = Running(project)
    daemon.wait_line("ready in ")
    children = wait_for(daemon.tree, what="the runtime process to start")
    daemon.stop(signal.SIGKILL)
    wait_for(lambda: gone(children), what="the runtime process to exit after its parent was killed")
    again = Running(project)  # the kernel released the lock with the process
    again.wait_line("ready in ")
    assert again.stop() == 0


# -- the stop sequence, driven in-process so an invocation can be in flight --------------------------


@pytest.fixture
def daemon(project: Path):
    manifest = load_manifest(project / "lambdad.yaml", env={})
    out = TextSink()
    d = Daemon(manifest, StateDir(project / ".lambdad"), out=out, grace_s=5.0)
    d.start()
    yield d, out
    if d.status is not DaemonState.stopped:
        d.handle_signal(signal.SIGTERM)
        d.handle_signal(signal.SIGTERM)


def _invoke_in_background(d: Daemon, event: dict) -> tuple[threading.Thread, list]:
    results: list = []
    thread = threading.Thread(target=lambda: results.append(d.functions.invoke("behave", json.dumps(event).encode())))
    thread.start()
    return thread, results


def test_graceful_stop_lets_the_running_invocation_finish(daemon, project: Path):
    d, out = daemon
    started, release = project / "started", project / "release"
    thread, results = _invoke_in_background(
        d, {"action": "touch_then_wait", "started": str(started), "path": str(release)}
    )
    wait_for(started.exists, what="the invocation to start")
    d.handle_signal(signal.SIGINT)
    assert d.status is DaemonState.stopping
    assert "SIGINT: stopping; waiting up to 5s for 1 running invocation(s)" in out.text
    with pytest.raises(Exception, match="shutting down"):
        d.functions.invoke("behave", b"{}")  # no new work
    d.step(d.clock.monotonic())
    assert d.status is DaemonState.stopping  # still waiting for the running one
    release.touch()
    thread.join(10)
    d.step(d.clock.monotonic())
    assert d.status is DaemonState.stopped and d.exit_code == 0
    assert results[0].outcome is Outcome.success
    assert "behave | START RequestId:" in out.text  # invocation lines are prefixed with the function


def test_second_signal_forces_the_stop(daemon, project: Path):
    d, out = daemon
    started = project / "started"
    thread, results = _invoke_in_background(
        d, {"action": "touch_then_wait", "started": str(started), "path": str(project / "never")}
    )
    wait_for(started.exists, what="the invocation to start")
    d.handle_signal(signal.SIGINT)
    d.handle_signal(signal.SIGINT)
    thread.join(10)
    assert d.status is DaemonState.stopped and d.exit_code == 130
    assert "forced stop: killing running invocations" in out.text
    assert results[0].outcome is Outcome.crashed


def test_state_folder_lock_is_exclusive(project: Path):
    a, b = StateDir(project / "s"), StateDir(project / "s")
    a.lock()
    a.write_info(DaemonInfo(pid=4242))
    with pytest.raises(DaemonAlreadyRunning, match=r"\(pid 4242\)"):
        b.lock()
    assert b.running_daemon() == DaemonInfo(pid=4242)
    a.unlock()
    assert b.running_daemon() is None
    b.lock()
    b.unlock()


# -- nothing outlives the daemon, even what handlers start -------------------------------------------


def _start_a_long_invocation(project: Path) -> int:
    pid_file = project / "child.pid"
    event = json.dumps({"action": "spawn_then", "pid_file": str(pid_file), "then": "timeout"})
    done = subprocess.run(lambdad_cmd("invoke", "behave", "--invocation-type", "Event", "--payload", event),
                          cwd=project, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the handler's child"))


@pytest.mark.parametrize("how", ["SIGKILL", "grace period over"])
def test_no_process_outlives_the_daemon(project: Path, how: str):
    write_manifest(project, DAEMON_MANIFEST.replace("code: ./functions", "code: ./functions\n    timeout: 60"))
    daemon = Running(project, "--grace", "0.5s")
    daemon.wait_line("ready in ")
    child = _start_a_long_invocation(project)
    tree = daemon.tree()
    assert any(p.pid == child for p in tree)
    if how == "SIGKILL":
        daemon.stop(signal.SIGKILL)
    else:
        assert daemon.stop(signal.SIGTERM) == 0
        assert any(line.startswith("grace period over: killing 1 running invocation(s)") for line in daemon.lines)
    wait_for(lambda: gone(tree), what="every process of the daemon's tree to exit")


def test_a_forced_stop_answers_http_calls_in_progress(project: Path):
    from tests.helpers import daemon_info

    daemon = Running(project, "--grace", "60s")
    daemon.wait_line("ready in ")
    api = daemon_info(project)["api"]
    answers: list[str] = []
    call = threading.Thread(target=lambda: answers.append(subprocess.run(
        ["curl", "-s", "-X", "POST", "--data", '{"action": "sleep", "seconds": 60}',
         f"{api}/2015-03-31/functions/behave/invocations"], capture_output=True, text=True, timeout=60).stdout))
    call.start()
    wait_for(lambda: any("START RequestId" in line for line in daemon.lines), what="the call to start")
    daemon.proc.send_signal(signal.SIGINT)
    daemon.wait_line("SIGINT: stopping")
    assert daemon.stop(signal.SIGINT, timeout=20) == 130  # the second Ctrl-C: no waiting out the grace period
    call.join(20)
    assert json.loads(answers[0])["errorType"] == "Runtime.ExitError"  # answered, not left hanging
