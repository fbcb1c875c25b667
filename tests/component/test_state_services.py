"""The services a command opens over a state folder (`services.state.open_state`): damaged store
files set aside only while no daemon holds the folder, and the reads `lambdad status` and
`lambdad schedules` make through the services."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.manifest import load_manifest
from lambdad.manifest.model import Manifest
from lambdad.services.asyncinvoke import FunctionCounts
from lambdad.services.state import open_state
from lambdad.statedir import StateDir
from lambdad.store import deadletters, invocations, rules
from tests.helpers import FakeClock

MANIFEST = """\
version: 1
functions:
  worker:
    handler: app.handler
    code: .
    events:
      - schedule: {name: tick, expression: "rate(5 minutes)"}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "lambdad.yaml").write_text(MANIFEST)
    return load_manifest(tmp_path / "lambdad.yaml")


def used_and_truncated(tmp_path: Path) -> StateDir:
    """A state folder a daemon used (it has a log), whose store file is now empty."""
    state = StateDir(tmp_path / ".lambdad")
    state.create()
    (state.logs / "worker.log").write_text("")
    (state.path / "store.sqlite3").write_bytes(b"")
    return state


def test_a_damaged_store_is_set_aside_and_said_when_no_daemon_holds_the_folder(tmp_path: Path, manifest: Manifest):
    state, said = used_and_truncated(tmp_path), []
    with open_state(state, manifest, FakeClock(), warn=said.append) as services:
        assert services.invocations.counts() == {}
    assert [p.name for p in state.path.iterdir() if ".damaged-" in p.name] == ["store.sqlite3.damaged-20231114T221320Z"]
    assert len(said) == 1 and said[0].startswith(f"the store {state.path / 'store.sqlite3'} was empty (0 bytes)")


def test_the_files_of_a_folder_a_daemon_holds_are_left_to_it(tmp_path: Path, manifest: Manifest):
    state, said = used_and_truncated(tmp_path), []
    state.lock()
    try:
        open_state(state, manifest, FakeClock(), warn=said.append).close()
    finally:
        state.unlock()
    assert said == [] and not [p for p in state.path.iterdir() if ".damaged-" in p.name]


def test_counts_put_each_function_s_events_outcomes_and_dead_letters_together(tmp_path: Path, manifest: Manifest):
    clock = FakeClock()
    with open_state(StateDir(tmp_path / ".lambdad"), manifest, clock) as services:
        services.invocations.enqueue("worker", b"{}")
        services.invocations.enqueue("worker", b"{}")

        def outcomes(tx) -> None:
            invocations.bump_stats(tx, "worker", succeeded=True)
            invocations.bump_stats(tx, "gone", succeeded=False)
            deadletters.add(tx, deadletters.DeadLetter(0, "req-1", "gone", b"{}", "RetriesExhausted", 3, "Boom",
                                                       "it broke", None, "", None, clock.time(), clock.time()))

        services.store.write(outcomes)
        assert services.invocations.counts() == {
            "worker": FunctionCounts(queued=2, succeeded=1),
            "gone": FunctionCounts(dead_lettered=1, failed=1),
        }


def test_a_rule_counts_from_when_a_daemon_created_it(tmp_path: Path, manifest: Manifest):
    with open_state(StateDir(tmp_path / ".lambdad"), manifest, FakeClock()) as services:
        assert services.schedules.created_at(["tick"]) == {}  # no daemon ran it yet
        services.store.write(lambda tx: rules.ensure(tx, "tick", "worker", "rate(5 minutes)", "UTC", 1_600_000_000.0))
        assert services.schedules.created_at(["tick", "other"]) == {"tick": 1_600_000_000.0}
