"""What the commands make of a manifest with no daemon running: `schedules` listing fire times, `fire`, and
manifest problems (a bad schedule expression, overlapping bucket triggers, `up` refusing to start),
through `main(argv)` in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.component.cli import run_cli
from tests.fixtures.manifests import BUCKETS_MANIFEST, DAEMON_MANIFEST, SCHEDULES_MANIFEST
from tests.helpers import write_manifest


@pytest.fixture
def project(tmp_path: Path, functions_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "received.jsonl"))
    return tmp_path


def test_schedules_lists_next_fire_times_without_a_daemon(project: Path):
    write_manifest(project, SCHEDULES_MANIFEST)
    done = run_cli(["schedules", "--next", "3", "--from", "2026-01-02T08:00:00Z", "--json"], cwd=project)
    assert done.code == 0, done.err
    listing = {r["name"]: r for r in json.loads(done.out)}
    assert listing["weekdays"] == {
        "function": "tick", "name": "weekdays", "expression": "cron(0 9 ? * MON-FRI *)", "timezone": "Europe/Paris",
        "enabled": True,
        # 2026-01-02 is a Friday; 09:00 in Paris is 08:00 UTC in winter
        "next": ["2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z", "2026-01-07T08:00:00Z"],
    }
    assert listing["every-minute"]["next"] == ["2026-01-02T08:01:00Z", "2026-01-02T08:02:00Z", "2026-01-02T08:03:00Z"]
    assert listing["paused"]["next"] == [] and listing["paused"]["enabled"] is False
    table = run_cli(["schedules", "--next", "1"], cwd=project)
    assert "weekdays  cron(0 9 ? * MON-FRI *)  (Europe/Paris)  -> tick" in table.out
    bad = run_cli(["schedules", "--from", "yesterday"], cwd=project)
    assert (bad.code, bad.err) == (
        2, "lambdad: --from: 'yesterday' is not an ISO-8601 time (2026-01-31T12:00:00Z)\n")


def test_an_invalid_expression_is_a_manifest_error_with_its_line(project: Path):
    write_manifest(project, SCHEDULES_MANIFEST.replace("rate(1 minute)", "rate(1 minutes)"))
    done = run_cli(["validate"], cwd=project)
    assert done.code == 2
    assert done.err == ("lambdad.yaml:9:52: functions.tick.events[0].schedule.expression: rate(1 minutes): "
                        "use the singular for 1: rate(1 minute)\n")


def test_overlapping_triggers_are_refused_naming_both(project: Path):
    write_manifest(project, BUCKETS_MANIFEST + "      - s3: {bucket: photos, filter: {prefix: images/}}\n")
    done = run_cli(["validate"], cwd=project)
    assert done.code == 2
    lines = done.err.splitlines()
    assert len(lines) == 2  # both earlier triggers it overlaps are named, one line each
    for line, suffix in zip(lines, (".jpeg", ".jpg"), strict=True):
        assert line.startswith(
            "lambdad.yaml:28:13: functions.jpegs.events[2].s3: overlaps the s3 trigger of function 'jpegs' "
            f"(s3:ObjectCreated:Put, prefix 'images/', suffix '{suffix}') on bucket 'photos': Configurations overlap."
        )


def test_up_with_a_bad_manifest_exits_2_without_starting(project: Path):
    write_manifest(project, DAEMON_MANIFEST.replace("code: ./functions", "code: ./functions\n    timeout: 0"))
    done = run_cli(["up"], cwd=project)
    assert done.code == 2
    assert done.err == "lambdad.yaml:8:14: functions.behave.timeout: 0 is less than the minimum of 1\n"
    assert not (project / ".lambdad" / "daemon.json").exists()


def test_fire_without_a_daemon_queues_the_rule_for_the_next_up(project: Path):
    write_manifest(project, SCHEDULES_MANIFEST)
    done = run_cli(["fire", "paused"], cwd=project)  # a disabled rule too
    assert done.code == 0, done.err
    assert done.out.startswith("queued paused for tick: RequestId ")
    status = json.loads(run_cli(["status", "--json"], cwd=project).out)
    assert status["daemon"] == {"running": False} and status["functions"]["tick"]["queued"] == 1
    unknown = run_cli(["fire", "nope"], cwd=project)
    assert (unknown.code, unknown.err) == (
        2, "lambdad: schedule 'nope' is not defined (schedules: every-minute, weekdays, paused)\n")
