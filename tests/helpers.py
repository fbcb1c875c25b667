"""Shared test helpers: a fake clock, deadline waits, manifests in tmp_path, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
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
    """Every accepted async event reached its outcome: nothing queued, retrying or running. (`status`
    runs in-process: a poll should not cost an interpreter start.)"""
    from tests.component.cli import run_cli as run_in_process

    done = run_in_process(["status", "--json"], cwd=project)
    assert done.code == 0, done.err
    counts = json.loads(done.out)["functions"].values()
    return all(c["queued"] == c["retrying"] == c["in_flight"] == 0 for c in counts)


@dataclass(frozen=True)
class AwsCli:
    """The AWS CLI the tests drive: v2 (what users have) when installed, else the venv's v1."""

    path: str
    v2: bool

    @property
    def service_error(self) -> int:
        """The exit status when the service answered with an error (v1 has no code of its own for it)."""
        return 254 if self.v2 else 255

    def raw_blobs(self) -> list[str]:
        """The option that makes v2 read a blob argument (`--payload`, `--data`) as text, as v1 does
        (v2 takes base64 unless told otherwise; v1 knows no such option)."""
        return ["--cli-binary-format", "raw-in-base64-out"] if self.v2 else []

    def payload(self, text: str) -> list[str]:
        return [*self.raw_blobs(), "--payload", text]

    def env(self, folder: Path, region: str = "us-east-1") -> dict[str, str]:
        """Dummy credentials, no instance-metadata lookups, no pager and a config file of its own, so
        that the user's own AWS set-up cannot change (or stall) what the CLI sends."""
        config = folder / "aws-config"
        config.write_text(f"[default]\nregion = {region}\noutput = json\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**env, "AWS_ACCESS_KEY_ID": "any", "AWS_SECRET_ACCESS_KEY": "any", "AWS_DEFAULT_REGION": region,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(config),
                "AWS_SHARED_CREDENTIALS_FILE": str(folder / "aws-credentials"), "AWS_PAGER": ""}

    def run(self, *args: str, folder: Path, region: str = "us-east-1", timeout: float = 60) \
            -> subprocess.CompletedProcess:
        return subprocess.run([self.path, *args], capture_output=True, text=True, env=self.env(folder, region),
                              timeout=timeout)


def _says_v2(path: str) -> bool:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return (done.stdout + done.stderr).startswith("aws-cli/2")


@cache
def aws_cli() -> AwsCli:
    """v2 if an `aws` on PATH or /usr/bin/aws says aws-cli/2, otherwise the venv's v1."""
    for candidate in (shutil.which("aws"), "/usr/bin/aws"):
        if candidate and _says_v2(candidate):
            return AwsCli(candidate, v2=True)
    return AwsCli(str(Path(sys.executable).parent / "aws"), v2=False)
