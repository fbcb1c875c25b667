"""Schedules through a real daemon and the CLI: a rate(1 minute) rule fires, `fire` and `schedules`."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lambdad.store import Store, rules
from tests.helpers import json_lines, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running

MANIFEST = """
version: 1
defaults:
  environment: {RECORD_FILE: "${RECORD_FILE}"}
functions:
  tick:
    handler: recorder.handler
    code: ./functions
    events:
      - schedule: {name: every-minute, expression: "rate(1 minute)"}
      - schedule: {name: weekdays, expression: "cron(0 9 ? * MON-FRI *)", timezone: Europe/Paris}
      - schedule: {name: paused, expression: "rate(5 minutes)", enabled: false, input: {"mode": "paused"}}
"""


@pytest.fixture
def project(tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "received.jsonl"))
    write_manifest(tmp_path, MANIFEST)
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


def test_schedules_lists_next_fire_times_without_a_daemon(project: Path):
    done = run_cli("schedules", "--next", "3", "--from", "2026-01-02T08:00:00Z", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    listing = {r["name"]: r for r in json.loads(done.stdout)}
    assert listing["weekdays"] == {
        "function": "tick", "name": "weekdays", "expression": "cron(0 9 ? * MON-FRI *)", "timezone": "Europe/Paris",
        "enabled": True,
        # 2026-01-02 is a Friday; 09:00 in Paris is 08:00 UTC in winter
        "next": ["2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z", "2026-01-07T08:00:00Z"],
    }
    assert listing["every-minute"]["next"] == ["2026-01-02T08:01:00Z", "2026-01-02T08:02:00Z", "2026-01-02T08:03:00Z"]
    assert listing["paused"]["next"] == [] and listing["paused"]["enabled"] is False
    table = run_cli("schedules", "--next", "1", cwd=project)
    assert "weekdays  cron(0 9 ? * MON-FRI *)  (Europe/Paris)  -> tick" in table.stdout
    bad = run_cli("schedules", "--from", "yesterday", cwd=project)
    assert (bad.returncode, bad.stderr) == (
        2, "lambdad: --from: 'yesterday' is not an ISO-8601 time (2026-01-31T12:00:00Z)\n")


def test_an_invalid_expression_is_a_manifest_error_with_its_line(project: Path):
    write_manifest(project, MANIFEST.replace("rate(1 minute)", "rate(1 minutes)"))
    done = run_cli("validate", cwd=project)
    assert done.returncode == 2
    assert done.stderr == ("lambdad.yaml:9:52: functions.tick.events[0].schedule.expression: rate(1 minutes): "
                           "use the singular for 1: rate(1 minute)\n")
