"""Shared test helpers: a fake clock, deadline waits, manifests in tmp_path, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_FUNCTIONS = FIXTURES / "functions"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._time = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._time += seconds
        self._mono += seconds


class TextSink:
    """A stand-in for a console: collects what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def any_free_port(text: str) -> str:
    """A manifest whose API listens on a free port (unless it says where): tests never take fixed
    ports, so they run beside `make up` and beside each other."""
    text = textwrap.dedent(text).lstrip()
    if not re.search(r"^api:", text, re.MULTILINE):
        text = text.rstrip("\n") + "\napi: {port: 0}\n"
    return text


def write_manifest(folder: Path, text: str, name: str = "lambdad.yaml") -> Path:
    path = folder / name
    path.write_text(any_free_port(text), encoding="utf-8")
    return path


def json_lines(path: Path) -> list[dict]:
    """The complete JSON lines a handler appended to `path` so far (it may be writing the next one)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def daemon_info(project: Path) -> dict:
    """What the running daemon wrote about itself: pid, and where its API and listeners listen."""
    return json.loads((project / ".lambdad" / "daemon.json").read_text())


def lambdad_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lambdad", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        lambdad_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )


def all_settled(project: Path) -> bool:
    """Every accepted async event reached its outcome: nothing queued, retrying or running."""
    done = run_cli("status", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)["functions"].values()
    return all(c["queued"] == c["retrying"] == c["in_flight"] == 0 for c in counts)
