"""EventBridge schedule expressions -- `cron(...)`, `rate(...)`, `at(...)` -- parsed, validated with
precise reasons, and turned into APScheduler triggers.

The mapping avoids APScheduler 3's traps: weekdays are numbered 1 = SUN in AWS and 0 = MON in
APScheduler (so days become names), `?` does not exist there (it means `*`), ranges may wrap in AWS
(`20-2`, `FRI-MON`: each field is expanded into its list of values), `L`/`#`/`nL` of the day of
week live in APScheduler's *day* field, `W` needs an expression of its own, every field is passed
explicitly (seconds 0), and the time zone is always given (APScheduler defaults to the host's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from lambdad.triggers.schedules.triggers import AwsCronTrigger, WallClockTrigger, rate_first_fire

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  #: AWS numbers them 1..7
_APS_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
#: EventBridge accepts years in this range.
YEARS = (1970, 2199)


class ScheduleError(ValueError):
    """An expression EventBridge would refuse; the message says why."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str
    kind: str  # cron | rate | at
    fields: dict[str, str] | None = None  #: APScheduler CronTrigger fields (cron)
    every_s: int = 0  #: rate
    at: datetime | None = None  #: at (aware)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self, created_at: datetime) -> Any:
        """The APScheduler trigger; a rate counts from `created_at` (aware, UTC)."""
        if self.kind == "cron":
            assert self.fields is not None
            trigger = AwsCronTrigger(**self.fields, timezone=self.zone)
            return trigger if self.timezone == "UTC" else WallClockTrigger(trigger)
        if self.kind == "rate":
            every = timedelta(seconds=self.every_s)
            return IntervalTrigger(seconds=self.every_s, start_date=rate_first_fire(created_at, every), timezone="UTC")
        return DateTrigger(run_date=self.at, timezone=self.zone)

    def next_times(self, created_at: datetime, after: datetime, count: int) -> list[datetime]:
        """The next `count` fire times strictly after `after`."""
        return list(islice(self.iter_times(created_at, after), count))

    def iter_times(self, created_at: datetime, after: datetime) -> Iterator[datetime]:
        if self.kind == "at":  # once (APScheduler's DateTrigger would answer the same date forever)
            if self.at is not None and self.at > after:
                yield self.at
            return
        trigger = self.trigger(created_at)
        now = after.astimezone(UTC) + timedelta(microseconds=1)
        while (nxt := trigger.get_next_fire_time(None, now)) is not None:
            yield nxt
            now = nxt.astimezone(UTC) + timedelta(microseconds=1)  # on in UTC: folds repeat wall times

    def latest_at_or_before(self, created_at: datetime, moment: datetime) -> datetime | None:
        """The scheduled time of the run due at `moment` (the latest fire time not after it)."""
        trigger = self.trigger(created_at)
        if self.kind == "rate":
            first = trigger.start_date
            if moment < first:
                return None
            periods = int((moment - first).total_seconds() // self.every_s)
            return first + timedelta(seconds=periods * self.every_s)
        if self.kind == "at":
            return self.at if self.at is not None and self.at <= moment else None
        # cron: look back a little first (a run is usually just due), further only if needed
        for window in (timedelta(minutes=2), timedelta(hours=1), timedelta(days=1)):
            latest = None
            for nxt in self.iter_times(created_at, moment - window):
                if nxt > moment:
                    break
                latest = nxt
            if latest is not None:
                return latest
        return None


def parse_schedule(expression: str, timezone: str = "UTC") -> Schedule:
    """Parse and validate; raises ScheduleError with the reason EventBridge would give, more precisely."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {timezone!r} (use an IANA name such as Europe/Paris)") from None
    text = expression.strip()
    if m := re.fullmatch(r"cron\((.*)\)", text):
        return Schedule(expression, timezone, "cron", fields=_cron_fields(m.group(1)))
    if m := re.fullmatch(r"rate\((.*)\)", text):
        return Schedule(expression, timezone, "rate", every_s=_rate_seconds(m.group(1)))
    if m := re.fullmatch(r"at\((.*)\)", text):
        return Schedule(expression, timezone, "at", at=_at_time(m.group(1), timezone))
    raise ScheduleError(f"{expression!r} is not a schedule expression: use cron(...), rate(...) or at(...)")


def _rate_seconds(body: str) -> int:
    m = re.fullmatch(r"(\d+) (minute|minutes|hour|hours|day|days)", body.strip())
    if not m:
        raise ScheduleError(
            f"rate({body}): write rate(VALUE UNIT) with a whole number and minute(s), hour(s) or day(s)"
        )
    value, unit = int(m.group(1)), m.group(2)
    if value < 1:
        raise ScheduleError(f"rate({body}): the value must be at least 1")
    singular = unit.rstrip("s")
    if value == 1 and unit.endswith("s"):
        raise ScheduleError(f"rate({body}): use the singular for 1: rate(1 {singular})")
    if value > 1 and not unit.endswith("s"):
        raise ScheduleError(f"rate({body}): use the plural for more than 1: rate({value} {unit}s)")
    return value * _RATE_UNITS[singular]


def _at_time(body: str, timezone: str) -> datetime:
    try:
        moment = datetime.strptime(body.strip(), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ScheduleError(f"at({body}): write at(yyyy-mm-ddThh:mm:ss)") from None
    return moment.replace(tzinfo=ZoneInfo(timezone))


# -- cron ---------------------------------------------------------------------------------------------


def _cron_fields(body: str) -> dict[str, str]:
    parts = body.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"cron({body}) has {len(parts)} fields; EventBridge cron has 6: minutes hours day-of-month month "
            "day-of-week year"
        )
    minutes, hours, dom, month, dow, year = parts
    if dom == "?" and dow == "?":
        raise ScheduleError(f"cron({body}): day-of-month and day-of-week cannot both be ?; set one of them")
    if dom != "?" and dow != "?":
        raise ScheduleError(f"cron({body}): day-of-month and day-of-week cannot both be set; use ? in one of them")
    fields = {
        "second": "0",
        "minute": _numeric("minutes", minutes, 0, 59),
        "hour": _numeric("hours", hours, 0, 23),
        "month": _numeric("month", month, 1, 12, MONTHS),
        "year": _years(year),
        "day": "*",
        "day_of_week": "*",
    }
    if dom != "?":
        fields["day"] = _day_of_month(dom)
    else:
        day, day_of_week = _day_of_week(dow)
        fields["day"], fields["day_of_week"] = day, day_of_week
    return fields


def _values(name: str, text: str, lo: int, hi: int, names: tuple[str, ...] = (), first: int = 0) -> list[int]:
    """Expand `text` (`*`, `a`, `a-b` wrapping allowed, `x/step`, lists) into the values it means."""
    out: list[int] = []
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{name}: empty item in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"{name}: {step_text!r} is not a step (a whole number from 1)")
            step = int(step_text)
        if base == "*":
            start, span = lo, hi - lo + 1
        elif "-" in base:
            a_text, b_text = base.split("-", 1)
            a, b = _value(name, a_text, lo, hi, names, first), _value(name, b_text, lo, hi, names, first)
            start, span = a, (b - a) % (hi - lo + 1) + 1  # b < a wraps around: 20-2 is 20..23, 0..2
        else:
            start = _value(name, base, lo, hi, names, first)
            span = hi - start + 1 if step_text else 1  # 5/15 means 5, 20, 35, 50
        out += [lo + (start - lo + i) % (hi - lo + 1) for i in range(0, span, step)]
    return sorted(set(out))


def _value(name: str, text: str, lo: int, hi: int, names: tuple[str, ...], first: int) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + first
    if not text.isdigit():
        hint = f" or {names[0]}-{names[-1]}" if names else ""
        raise ScheduleError(f"{name}: {text!r} is not a value ({lo}-{hi}{hint})")
    value = int(text)
    if not lo <= value <= hi:
        raise ScheduleError(f"{name}: {value} is out of range {lo}-{hi}")
    return value


def _numeric(name: str, text: str, lo: int, hi: int, names: tuple[str, ...] = ()) -> str:
    if text == "*":
        return "*"
    if "?" in text or "#" in text:
        raise ScheduleError(f"{name}: {text!r} uses a wildcard {name} does not take (only , - * /)")
    return ",".join(map(str, _values(name, text, lo, hi, names, first=1 if names else 0)))


def _years(text: str) -> str:
    if text == "*":
        return f"{YEARS[0]}-{YEARS[1]}"
    if any(c in text for c in "?LW#"):
        raise ScheduleError(f"year: {text!r} uses a wildcard year does not take (only , - * /)")
    parts = []
    for part in text.split(","):
        base, _, step = part.partition("/")
        bounds = base.split("-") if base != "*" else [str(YEARS[0]), str(YEARS[1])]
        for b in bounds:
            if not b.isdigit() or not YEARS[0] <= int(b) <= YEARS[1]:
                raise ScheduleError(f"year: {b!r} is out of range {YEARS[0]}-{YEARS[1]}")
        if len(bounds) == 2 and int(bounds[0]) > int(bounds[1]):
            raise ScheduleError(f"year: the range {base!r} runs backwards")
        parts.append(part if base != "*" else f"{YEARS[0]}-{YEARS[1]}" + (f"/{step}" if step else ""))
    return ",".join(parts)


def _day_of_month(text: str) -> str:
    items = []
    for part in text.split(","):
        upper = part.upper()
        if upper == "L":
            items.append("last")
        elif upper == "LW" or re.fullmatch(r"\d{1,2}W", upper):
            day = upper[:-1]
            if day != "L" and not 1 <= int(day) <= 31:
                raise ScheduleError(f"day-of-month: {part!r}: the day must be 1-31")
            items.append(upper)
        elif "#" in part or "L" in upper or "W" in upper:
            raise ScheduleError(f"day-of-month: {part!r} is not valid (use 1-31, L, LW or nW)")
        else:
            items += map(str, _values("day-of-month", part, 1, 31))
    return ",".join(items)


def _day_of_week(text: str) -> tuple[str, str]:
    """Returns APScheduler's (day, day_of_week): `#`, `nL` land in `day`, plain days in `day_of_week`."""
    if "/" in text:
        raise ScheduleError(f"day-of-week: {text!r}: / is not allowed in day-of-week (APScheduler would drop the step)")
    if text == "*":
        return "*", "*"
    if "#" in text or re.search(r"\dL$|^[A-Za-z]{3}L$", text):
        if "," in text:
            raise ScheduleError(f"day-of-week: {text!r}: # and nL cannot be combined with other values")
        if "#" in text:
            day_text, _, nth = text.partition("#")
            if text.count("#") > 1 or not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise ScheduleError(f"day-of-week: {text!r}: write DAY#N with N from 1 to 5, for example 3#2")
            day = _value("day-of-week", day_text, 1, 7, DAYS, 1)
            return f"{_ORDINALS[int(nth) - 1]} {_APS_DAYS[day - 1]}", "*"
        day = _value("day-of-week", text[:-1], 1, 7, DAYS, 1)
        return f"last {_APS_DAYS[day - 1]}", "*"
    if text.upper() == "L":  # the last day of the week: Saturday
        return "*", "sat"
    days = _values("day-of-week", text, 1, 7, DAYS, first=1)
    return "*", ",".join(_APS_DAYS[d - 1] for d in days)


def describe_problem(expression: str, timezone: str) -> str | None:
    """The reason `expression` is invalid, or None (for manifest validation)."""
    try:
        parse_schedule(expression, timezone)
    except ScheduleError as e:
        return str(e)
    return None
