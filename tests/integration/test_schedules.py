"""Schedules through a real daemon and the CLI: a rate(1 minute) rule fires, `fire` and `schedules`."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lambdad.store import Store, rules
from tests.fixtures.manifests import SCHEDULES_MANIFEST
from tests.helpers import json_lines, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running


@pytest.fixture
def project(tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "received.jsonl"))
    write_manifest(tmp_path, SCHEDULES_MANIFEST)
    return tmp_path


def received(project: Path) -> list[dict]:
    return [line["event"] for line in json_lines(project / "received.jsonl")]


def utc_seconds(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_a_rate_rule_fires_through_the_daemon(project: Path):
    # The rule was created 58 s ago (as if by an earlier run): its first run is due in about 2 s.
    store = Store.in_state_folder(project / ".lambdad")
    created = time.time() - 58
    store.write(lambda tx: rules.ensure(tx, "every-minute", "tick", "rate(1 minute)", "UTC", created))
    store.close()
    daemon = Running(project)
    try:
        daemon.wait_line("ready in ")
        assert any("schedule every-minute  rate(1 minute)" in line for line in daemon.lines)
        event = wait_for(lambda: received(project), timeout=20, what="the scheduled run")[0]
    finally:
        code = daemon.stop()
    assert code == 0
    EventBridgeModel(**event)
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/every-minute"]
    assert abs(utc_seconds(event["time"]) - (created + 60)) <= 1  # the scheduled time, to the second


def test_fire_runs_a_rule_now_even_a_disabled_one(project: Path):
    daemon = Running(project)
    try:
        daemon.wait_line("ready in ")
        done = run_cli("fire", "paused", cwd=project)
        assert done.returncode == 0 and done.stdout.startswith("queued paused for tick: RequestId ")
        done = run_cli("fire", "weekdays", cwd=project)
        assert done.returncode == 0
        got = wait_for(lambda: len(received(project)) >= 2 and received(project), what="both runs")
    finally:
        code = daemon.stop()
    assert code == 0
    assert {"mode": "paused"} in got  # a rule's input is delivered as is
    (scheduled,) = [e for e in got if e != {"mode": "paused"}]
    assert scheduled["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/weekdays"]
    assert abs(time.time() - utc_seconds(scheduled["time"])) < 60  # a manual run's time is now
    done = run_cli("fire", "nope", cwd=project)
    assert (done.returncode, done.stderr) == (
        2, "lambdad: schedule 'nope' is not defined (schedules: every-minute, weekdays, paused)\n")
