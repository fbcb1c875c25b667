"""Schedule rules as APScheduler jobs. A job only queues an asynchronous event (EventBridge invokes
Lambda asynchronously), so retries, the dead-letter queue and destinations apply as they do for S3.

A daemon that was stopped (or a laptop that slept) does not fire a burst of missed runs: APScheduler
coalesces what it missed while running into one run, and at start-up each rule catches up at most
once, for the latest run it missed within the last day.

A run whose event cannot be committed (a full disk) is not lost: it is held and tried again with
backoff, oldest first, for up to a day after its scheduled time, as EventBridge retries a delivery
(its default maximum event age is 24 hours); past that it is given up, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from lambdad.clock import Clock
from lambdad.health import Health
from lambdad.ids import new_request_id
from lambdad.manifest.model import Manifest, ScheduleTrigger
from lambdad.payloads.scheduled import scheduled_event
from lambdad.services.asyncinvoke import queue_event
from lambdad.store import Store, rules
from lambdad.triggers.schedules.expressions import Schedule, parse_schedule

log = logging.getLogger(__name__)

#: EventBridge's default maximum event age: a run that could not be queued is retried this long.
MAX_EVENT_AGE_S = 24 * 3600.0
#: The one-off APScheduler job that tries held runs again.
RETRY_JOB = "lambdad:retry-held-runs"


class Scheduler(Protocol):
    """What lambdad needs of APScheduler's BackgroundScheduler (tests pass a recording twin)."""

    def add_job(self, func: Callable[..., Any], trigger: Any, **kwargs: Any) -> Any: ...

    def start(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    def remove_job(self, job_id: str) -> None: ...


@dataclass(frozen=True)
class ScheduledRule:
    """One schedule trigger of the manifest with its parsed expression: what one APScheduler job fires."""

    function: str
    trigger: ScheduleTrigger
    schedule: Schedule

    @property
    def name(self) -> str:
        return self.trigger.name


def manifest_rules(manifest: Manifest) -> list[ScheduledRule]:
    return [
        ScheduledRule(fn.name, t, parse_schedule(t.expression, t.timezone))
        for fn in manifest.functions.values()
        for t in fn.events
        if isinstance(t, ScheduleTrigger)
    ]


def rule_payload(manifest: Manifest, rule: ScheduledRule, scheduled_at: float) -> bytes:
    """The rule's constant `input` when it has one (delivered as is), else the Scheduled Event."""
    if rule.trigger.input is not None:
        return json.dumps(rule.trigger.input).encode()
    event = scheduled_event(event_id=new_request_id(), region=manifest.region, account=manifest.account,
                            rule=rule.name, scheduled_at=scheduled_at)
    return json.dumps(event).encode()


def new_scheduler() -> Scheduler:
    from apscheduler.schedulers.background import BackgroundScheduler

    # Jobs only queue events: never skip a late run (misfire_grace_time None), and run a backlog once.
    return BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
    )


class Schedules:
    def __init__(
        self,
        manifest: Manifest,
        store: Store,
        clock: Clock,
        on_commit: Callable[[], None] = lambda: None,
        scheduler: Scheduler | None = None,
        health: Health | None = None,
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        self.manifest = manifest
        self.store = store
        self.clock = clock
        self._on_commit = on_commit
        self._health = health or Health()
        self._warn = warn
        #: Runs whose event could not be committed yet, oldest first: (rule, scheduled time).
        self.held: list[tuple[ScheduledRule, float]] = []
        self._held_lock = threading.RLock()  #: APScheduler runs jobs on several threads
        self.rules = {r.name: r for r in manifest_rules(manifest)}
        self.scheduler = scheduler or new_scheduler()
        self._created: dict[str, datetime] = {}
        self._started = False

    def start(self) -> None:
        now = self.clock.time()
        for rule in self.rules.values():
            self._add(rule, now, catch_up=True)
        self.scheduler.start()
        self._started = True

    def _add(self, rule: ScheduledRule, now: float, catch_up: bool) -> None:
        """Schedule one rule's job; with `catch_up`, a rule that ran before and missed a run while
        lambdad was down runs once now."""
        if not rule.trigger.enabled:
            return
        state = self.store.write(lambda tx: rules.ensure(tx, rule.name, rule.function, rule.schedule.expression,
                                                          rule.schedule.timezone, now))
        created = datetime.fromtimestamp(state.created_at, UTC)
        self._created[rule.name] = created
        if catch_up and state.last_fire is not None:
            missed = rule.schedule.latest_at_or_before(created, datetime.fromtimestamp(now, UTC))
            if missed is not None and missed.timestamp() > state.last_fire:
                log.info("schedule %s missed its run of %s while lambdad was down: running it once now", rule.name,
                         missed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                self.fire(rule, missed.timestamp())
        self.scheduler.add_job(
            self._job, trigger=rule.schedule.trigger(created), id=rule.name, name=rule.name, args=(rule.name,)
        )

    def _remove(self, name: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        if self._created.pop(name, None) is not None:
            with contextlib.suppress(JobLookupError):  # an at() rule that ran: APScheduler dropped its job
                self.scheduler.remove_job(name)

    def apply(self, manifest: Manifest, added: Iterable[str], removed: Iterable[str], changed: Iterable[str]) -> None:
        """A reload: only the named rules are touched. An unchanged rule keeps its job, so it neither
        fires twice nor skips a run; a changed one starts over (a rate counts from the change)."""
        now = self.clock.time()
        fresh = {r.name: r for r in manifest_rules(manifest)}
        for name in [*removed, *changed]:
            self._remove(name)
        self.manifest = manifest
        self.rules = fresh
        for name in [*changed, *added]:  # no catch-up: a rule (re)defined now starts from now
            self._add(fresh[name], now, catch_up=False)

    def _job(self, name: str) -> None:
        """APScheduler calls this when a rule is due: queue the event for the scheduled time."""
        rule, created = self.rules.get(name), self._created.get(name)
        if rule is None or created is None:  # removed by a reload while this run was starting
            return
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        scheduled = rule.schedule.latest_at_or_before(created, now) or now
        self.fire(rule, scheduled.timestamp())

    def fire(self, rule: ScheduledRule, scheduled_at: float) -> str | None:
        """Queue the rule's event for `scheduled_at`; None if that run already happened, if a
        reload replaced the rule meanwhile (its own job fires the new one), or if it is held (the
        store cannot be written now: it is tried again later)."""
        if self.rules.get(rule.name) is not rule:
            return None
        with self._held_lock:
            if self.held:  # behind the runs held: a later run committed first would make them look done
                self.held.append((rule, scheduled_at))
                self.retry_held()
                return None
            try:
                return self._queue(rule, scheduled_at)
            except sqlite3.OperationalError as e:
                self.held.append((rule, scheduled_at))
                self._retry_later(e)
                return None

    def retry_held(self) -> None:
        """Try the held runs again, oldest first, until one fails (then later again)."""
        with self._held_lock:
            now = self.clock.time()
            while self.held:
                rule, scheduled_at = self.held[0]
                current = self.rules.get(rule.name) is rule  # (else a reload removed or changed it)
                if current and now - scheduled_at > MAX_EVENT_AGE_S:
                    self._warn(f"schedule {rule.name}: the run of "
                               f"{datetime.fromtimestamp(scheduled_at, UTC):%Y-%m-%d %H:%M:%S} UTC could not be "
                               "queued within 24 hours (the store could not be written); given up")
                elif current:
                    try:
                        self._queue(rule, scheduled_at)
                    except sqlite3.OperationalError as e:
                        self._retry_later(e)
                        return
                self.held.pop(0)
            self._health.recovered("schedules")

    def _retry_later(self, error: Exception) -> None:
        from apscheduler.triggers.date import DateTrigger

        wait = self._health.failing("schedules", error)
        at = datetime.fromtimestamp(self.clock.time() + wait, UTC)
        self.scheduler.add_job(self.retry_held, trigger=DateTrigger(at, timezone=UTC), id=RETRY_JOB, name=RETRY_JOB,
                               replace_existing=True)

    def _queue(self, rule: ScheduledRule, scheduled_at: float) -> str | None:
        name = rule.name
        payload = rule_payload(self.manifest, rule, scheduled_at)
        request_id = new_request_id()

        def queue(tx) -> bool:
            if not rules.fired(tx, name, scheduled_at):
                return False
            queue_event(tx, rule.function, payload, self.clock.time(), "schedule", request_id=request_id)
            return True

        if not self.store.write(queue):
            return None
        self._on_commit()
        return request_id

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.scheduler.shutdown(wait=False)
