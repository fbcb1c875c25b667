"""APScheduler triggers for what APScheduler 3 cannot express by itself: the nearest weekday (`15W`,
`LW`) of EventBridge cron, and rate() schedules counted from when the rule was created."""

from __future__ import annotations

import re
from calendar import monthrange, weekday
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import AllExpression
from apscheduler.triggers.cron.fields import DayOfMonthField


class NearestWeekdayExpression(AllExpression):
    """`15W`: the weekday nearest the 15th, never leaving the month; `LW`: the month's last weekday."""

    value_re = re.compile(r"(?P<day>\d{1,2}|L)W$", re.IGNORECASE)

    def __init__(self, day: str) -> None:
        super().__init__(None)
        self.day = day.upper()

    def get_next_value(self, date, field):
        last = monthrange(date.year, date.month)[1]
        target = last if self.day == "L" else int(self.day)
        if target > last:
            return None
        day_of_week = weekday(date.year, date.month, target)  # 0 = Monday
        if day_of_week == 5:  # Saturday: Friday before, unless that leaves the month
            target = target - 1 if target > 1 else target + 2
        elif day_of_week == 6:  # Sunday: Monday after, unless that leaves the month
            target = target + 1 if target < last else target - 2
        return target if target >= date.day else None

    def __str__(self) -> str:
        return f"{self.day}W"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NearestWeekdayExpression) and other.day == self.day

    def __hash__(self) -> int:
        return hash(("W", self.day))


class AwsDayOfMonthField(DayOfMonthField):
    COMPILERS = [*DayOfMonthField.COMPILERS, NearestWeekdayExpression]


class AwsCronTrigger(CronTrigger):
    """CronTrigger whose day field also understands `nW` and `LW`."""

    FIELDS_MAP = {**CronTrigger.FIELDS_MAP, "day": AwsDayOfMonthField}


def rate_first_fire(created_at: datetime, every: timedelta) -> datetime:
    """EventBridge counts a rate from the rule's creation: the first run is one period later."""
    return created_at + every


class WallClockTrigger(BaseTrigger):
    """EventBridge Scheduler's daylight-saving rules around a cron trigger in a local time zone: a
    local time skipped by the clock change does not run, and one that happens twice runs once."""

    def __init__(self, inner: CronTrigger) -> None:
        self.inner = inner

    def get_next_fire_time(self, previous_fire_time, now):
        while True:
            nxt = self.inner.get_next_fire_time(previous_fire_time, now)
            if nxt is None or _happens_once_or_first(nxt):
                return nxt
            # Step on in UTC: wall-clock arithmetic inside a repeated hour would find the same time again.
            previous_fire_time, now = None, nxt.astimezone(UTC) + timedelta(seconds=1)

    def __str__(self) -> str:
        return str(self.inner)


def _happens_once_or_first(moment: datetime) -> bool:
    """False for a local time that does not exist (spring forward) and for the second occurrence
    of one that exists twice (fall back)."""
    zone = moment.tzinfo
    naive = moment.replace(tzinfo=None)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        return False  # the clock jumped over it
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():  # repeated: keep the earlier one only
        return moment.utcoffset() == first.utcoffset()
    return True
