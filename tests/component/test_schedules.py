"""The schedule service on a fake clock, with a recording twin of APScheduler: what a firing queues,
catch-up after downtime, rates that survive restarts, disabled rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lambdad.manifest.model import Function, Manifest, ScheduleTrigger
from lambdad.store import Store
from lambdad.triggers.schedules.service import Schedules
from tests.helpers import FakeClock


class FakeScheduler:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple] = {}
        self.started = False

    def add_job(self, func, trigger, **kwargs):
        self.jobs[kwargs["id"]] = (func, trigger, kwargs)

    def start(self) -> None:
        self.started = True

    def shutdown(self, wait: bool = True) -> None:
        self.started = False

    def remove_job(self, job_id: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        if job_id not in self.jobs:
            raise JobLookupError(job_id)
        del self.jobs[job_id]

    def run(self, job_id: str) -> None:
        func, _, kwargs = self.jobs[job_id]
        func(*kwargs.get("args", ()))


T0 = datetime(2024, 1, 1, 9, 59, 30, tzinfo=UTC).timestamp()


def manifest(tmp_path: Path, *triggers: ScheduleTrigger) -> Manifest:
    fn = Function("tick", "a.h", tmp_path, "python3", events=triggers)
    return Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account="111122223333", functions={"tick": fn})


class World:
    def __init__(self, tmp_path: Path, *triggers: ScheduleTrigger, store: Store | None = None,
                 clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock(start=T0)
        self.store = store or Store(":memory:")
        self.scheduler = FakeScheduler()
        self.pokes = 0
        self.service = Schedules(manifest(tmp_path, *triggers), self.store, self.clock, self.poke, self.scheduler)

    def poke(self) -> None:
        self.pokes += 1

    def queued(self) -> list[dict]:
        with self.store.reading() as tx:
            rows = tx.execute("SELECT function, payload, source FROM events ORDER BY id").fetchall()
        assert {(f, s) for f, _, s in rows} <= {("tick", "schedule")}
        return [json.loads(p) for _, p, _ in rows]


HOURLY = ScheduleTrigger("hourly", "cron(0 * * * ? *)")


def test_a_due_rule_queues_the_scheduled_event_for_its_scheduled_minute(tmp_path: Path):
    w = World(tmp_path, HOURLY)
    w.service.start()
    assert w.scheduler.started and set(w.scheduler.jobs) == {"hourly"}
    _, trigger, kwargs = w.scheduler.jobs["hourly"]
    assert kwargs["name"] == "hourly"
    assert trigger.get_next_fire_time(None, datetime.fromtimestamp(T0, UTC)) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    w.clock.advance(30.0123)  # APScheduler calls the job a little after 10:00:00
    w.scheduler.run("hourly")
    (event,) = w.queued()
    EventBridgeModel(**event)
    assert event["time"] == "2024-01-01T10:00:00Z"  # the scheduled time, not the moment of the call
    assert event["resources"] == ["arn:aws:events:eu-west-1:111122223333:rule/hourly"]
    assert (event["account"], event["region"], event["detail-type"], event["source"], event["detail"]) == (
        "111122223333", "eu-west-1", "Scheduled Event", "aws.events", {})
    assert w.pokes == 1
    w.scheduler.run("hourly")  # called twice for the same run: queued once
    assert len(w.queued()) == 1


def test_input_is_delivered_as_is(tmp_path: Path):
    w = World(tmp_path, ScheduleTrigger("sweep", "rate(5 minutes)", input={"mode": "sweep", "n": [1, 2]}))
    w.service.start()
    w.clock.advance(300)
    w.scheduler.run("sweep")
    assert w.queued() == [{"mode": "sweep", "n": [1, 2]}]


def test_disabled_rules_are_defined_but_silent(tmp_path: Path):
    w = World(tmp_path, HOURLY, ScheduleTrigger("off", "rate(1 minute)", enabled=False))
    w.service.start()
    assert set(w.scheduler.jobs) == {"hourly"}


def after_downtime(tmp_path: Path) -> tuple[Store, FakeClock]:
    """The hourly rule ran at 10:00, then lambdad was down until 15:00: 11:00 ... 15:00 were missed."""
    store = Store.in_state_folder(tmp_path / "state")
    clock = FakeClock(start=T0)
    first = World(tmp_path, HOURLY, store=store, clock=clock)
    first.service.start()
    clock.advance(30)
    first.scheduler.run("hourly")  # 10:00 ran
    first.service.stop()
    clock.advance(5 * 3600)
    return store, clock


def test_downtime_is_caught_up_once_not_in_a_burst(tmp_path: Path):
    store, clock = after_downtime(tmp_path)
    second = World(tmp_path, HOURLY, store=store, clock=clock)
    second.service.start()
    times = [e["time"] for e in second.queued()]
    assert times == ["2024-01-01T10:00:00Z", "2024-01-01T15:00:00Z"]  # one catch-up: the latest missed run
    second.scheduler.run("hourly")  # APScheduler's own late call for the same run changes nothing
    assert len(second.queued()) == 2
    store.close()


def test_a_rate_keeps_counting_from_the_rules_creation_across_restarts(tmp_path: Path):
    store = Store.in_state_folder(tmp_path / "state")
    clock = FakeClock(start=T0)
    rule = ScheduleTrigger("every5", "rate(5 minutes)")
    World(tmp_path, rule, store=store, clock=clock).service.start()
    clock.advance(7 * 60)
    again = World(tmp_path, rule, store=store, clock=clock)
    again.service.start()
    _, trigger, _ = again.scheduler.jobs["every5"]
    now = datetime.fromtimestamp(clock.time(), UTC)
    assert trigger.get_next_fire_time(None, now) == datetime.fromtimestamp(T0 + 10 * 60, UTC)  # not now + 5 min
    changed = World(tmp_path, ScheduleTrigger("every5", "rate(10 minutes)"), store=store, clock=clock)
    changed.service.start()  # a changed rule starts over, as a recreated EventBridge rule does
    _, trigger, _ = changed.scheduler.jobs["every5"]
    assert trigger.get_next_fire_time(None, now) == datetime.fromtimestamp(clock.time() + 600, UTC)
    store.close()


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_time_zones_are_the_rules_not_the_hosts(tmp_path: Path, zone: str):
    w = World(tmp_path, ScheduleTrigger("nine", "cron(0 9 ? * MON-FRI *)", timezone=zone))
    w.service.start()
    _, trigger, _ = w.scheduler.jobs["nine"]
    nxt = trigger.get_next_fire_time(None, datetime.fromtimestamp(T0, UTC))
    assert (nxt.hour, nxt.minute, str(nxt.tzinfo)) == (9, 0, zone)


def test_a_reload_touches_only_the_rules_that_changed(tmp_path: Path):
    every5 = ScheduleTrigger("every5", "rate(5 minutes)")
    w = World(tmp_path, HOURLY, every5, ScheduleTrigger("gone", "rate(1 minute)"))
    w.service.start()
    hourly_job = w.scheduler.jobs["hourly"]
    w.clock.advance(120)
    new = manifest(tmp_path, HOURLY, ScheduleTrigger("every5", "rate(10 minutes)"), ScheduleTrigger("new", "rate(2 minutes)"))
    w.service.apply(new, added=["new"], removed=["gone"], changed=["every5"])
    assert set(w.scheduler.jobs) == {"hourly", "every5", "new"}
    assert w.scheduler.jobs["hourly"] is hourly_job  # untouched: it neither fires twice nor skips a run
    now = datetime.fromtimestamp(w.clock.time(), UTC)
    _, trigger, _ = w.scheduler.jobs["every5"]
    assert trigger.get_next_fire_time(None, now) == datetime.fromtimestamp(w.clock.time() + 600, UTC)  # from the change
    w.clock.advance(30)
    w.scheduler.run("hourly")  # 10:00, as before the reload
    assert [e["time"] for e in w.queued()] == ["2024-01-01T10:00:00Z"]


def test_a_run_that_starts_as_its_rule_is_removed_queues_nothing(tmp_path: Path):
    w = World(tmp_path, HOURLY)
    w.service.start()
    func, _, kwargs = w.scheduler.jobs["hourly"]
    w.service.apply(manifest(tmp_path), added=[], removed=["hourly"], changed=[])
    assert w.scheduler.jobs == {}
    w.clock.advance(30)
    func(*kwargs["args"])  # APScheduler's thread was already calling it
    assert w.queued() == []


def test_removing_an_at_rule_that_already_ran_is_fine(tmp_path: Path):
    once = ScheduleTrigger("once", "at(2024-01-01T10:00:00)")
    w = World(tmp_path, once)
    w.service.start()
    w.clock.advance(30)
    w.scheduler.run("once")
    del w.scheduler.jobs["once"]  # APScheduler drops a date trigger's job once it ran
    w.service.apply(manifest(tmp_path), added=[], removed=["once"], changed=[])
    assert w.scheduler.jobs == {} and len(w.queued()) == 1


def test_a_rule_enabled_again_by_a_reload_does_not_catch_up_at_once(tmp_path: Path):
    store = Store.in_state_folder(tmp_path / "state")
    w = World(tmp_path, HOURLY, store=store)
    w.service.start()
    w.clock.advance(30)
    w.scheduler.run("hourly")  # 10:00 ran
    off = ScheduleTrigger("hourly", "cron(0 * * * ? *)", enabled=False)
    w.service.apply(manifest(tmp_path, off), added=[], removed=[], changed=["hourly"])
    w.clock.advance(3 * 3600)  # 11:00, 12:00 and 13:00 pass while it is disabled
    w.service.apply(manifest(tmp_path, HOURLY), added=[], removed=[], changed=["hourly"])
    assert [e["time"] for e in w.queued()] == ["2024-01-01T10:00:00Z"]  # no burst, no catch-up
    assert "hourly" in w.scheduler.jobs
    store.close()
