"""`lambdad invoke` when a daemon runs: the command hands the call to the daemon's Invoke API and
prints what it answered. The API here is the real app, served in-process by the daemon's HTTP
servers over in-memory environments and store; the state folder says a daemon runs there."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lambdad.http.server import HttpServers, bind
from lambdad.manifest import load_manifest
from lambdad.manifest.model import Endpoint
from lambdad.statedir import DaemonInfo, StateDir
from tests.component.asgi import ApiWorld
from tests.component.cli import run_cli

MANIFEST = """\
version: 1
functions:
  f:
    handler: app.handler
    code: .
"""


@dataclass
class Daemon:
    project: Path
    world: ApiWorld


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    world = ApiWorld(tmp_path, load_manifest(tmp_path / "lambdad.yaml"))
    servers = HttpServers()
    sock = bind(Endpoint("127.0.0.1", 0), "api")
    world.api.port = sock.getsockname()[1]
    servers.add("api", sock, world.api)
    servers.start()
    assert servers.wait_started()
    state = StateDir(tmp_path / ".lambdad")
    state.create()
    state.lock()
    state.write_info(DaemonInfo(pid=os.getpid(), api=servers.addresses["api"]))
    try:
        yield Daemon(tmp_path, world)
    finally:
        state.unlock()
        servers.stop()
        world.close()


def test_a_call_runs_in_the_daemons_environment(daemon: Daemon):
    done = run_cli(["invoke", "f", "--payload", '{"n": 1}'], cwd=daemon.project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"n": 1}
    assert json.loads(done.err) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert daemon.world.invocations() == 1  # the daemon ran it, not an environment of the command's own


def test_an_event_is_queued_by_the_daemon(daemon: Daemon):
    done = run_cli(["invoke", "f", "out.json", "--invocation-type", "Event", "--payload", "{}"], cwd=daemon.project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"StatusCode": 202}
    assert (daemon.project / "out.json").read_bytes() == b""
    assert daemon.world.queued() == 1


def test_a_dry_run_and_a_response_to_an_outfile(daemon: Daemon):
    dry = run_cli(["invoke", "f", "--invocation-type", "DryRun"], cwd=daemon.project)
    assert (dry.code, json.loads(dry.out)) == (0, {"StatusCode": 204})
    done = run_cli(["invoke", "f", "out.json", "--payload", '{"to": "file"}'], cwd=daemon.project)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads((daemon.project / "out.json").read_text()) == {"to": "file"}
    assert daemon.world.invocations() == 1  # the dry run ran nothing


def test_what_the_api_refuses_is_one_line_and_exit_2(daemon: Daemon):
    bad = run_cli(["invoke", "f", "--payload", "{nope"], cwd=daemon.project)
    assert bad.code == 2 and bad.err.startswith("lambdad: InvalidRequestContentException: ")
    assert len(bad.err.strip().splitlines()) == 1
    context = run_cli(["invoke", "f", "--client-context", "%%%"], cwd=daemon.project)
    assert (context.code, context.err) == (
        2, "lambdad: --client-context: Client context must be a valid Base64-encoded JSON object.\n")
    assert daemon.world.invocations() == 0
