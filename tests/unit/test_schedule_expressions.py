"""EventBridge schedule expressions: next fire times for many expressions, the precise refusals, and
daylight saving. Expected times come from hand-checked anchors and from a brute-force reading of the
AWS rules written here, independently of lambdad's mapping onto APScheduler."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lambdad.payloads.scheduled import scheduled_event
from lambdad.triggers.schedules.expressions import ScheduleError, parse_schedule

# -- an independent, brute-force reading of AWS cron -------------------------------------------------

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _set(text: str, lo: int, hi: int, names: list[str] | None = None) -> set[int]:
    def num(t: str) -> int:
        return names.index(t.upper()) + lo if names and t.upper() in names else int(t)

    out: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        step_n = int(step) if step else 1
        if base == "*":
            seq = list(range(lo, hi + 1))
        elif "-" in base:
            a, b = (num(x) for x in base.split("-"))
            seq = list(range(a, b + 1)) if a <= b else list(range(a, hi + 1)) + list(range(lo, b + 1))
        else:
            a = num(base)
            seq = list(range(a, hi + 1)) if step else [a]
        out |= set(seq[::step_n])
    return out


def _aws_weekday(d: date) -> int:
    return (d.weekday() + 1) % 7 + 1  # 1 = SUN ... 7 = SAT


def _day_matches(d: date, dom: str, dow: str) -> bool:
    last = calendar.monthrange(d.year, d.month)[1]
    if dom != "?":
        for item in dom.split(","):
            if item == "L" and d.day == last:
                return True
            if item.endswith("W"):
                target = last if item == "LW" else int(item[:-1])
                if target > last:
                    continue
                wd = date(d.year, d.month, target).weekday()
                if wd == 5:
                    target = target - 1 if target > 1 else target + 2
                elif wd == 6:
                    target = target + 1 if target < last else target - 2
                if d.day == target:
                    return True
            elif item != "L" and d.day in _set(item, 1, 31):
                return True
        return False
    if dow == "L":
        return _aws_weekday(d) == 7
    if "#" in dow:
        day, nth = dow.split("#")
        want = DAYS.index(day.upper()) + 1 if day.upper() in DAYS else int(day)
        return _aws_weekday(d) == want and (d.day - 1) // 7 + 1 == int(nth)
    if dow.endswith("L"):
        day = dow[:-1]
        want = DAYS.index(day.upper()) + 1 if day.upper() in DAYS else int(day)
        return _aws_weekday(d) == want and d.day + 7 > last
    return _aws_weekday(d) in _set(dow, 1, 7, DAYS)


def brute_force(expr: str, after: datetime, count: int) -> list[datetime]:
    minutes, hours, dom, month, dow, year = expr.split()
    mins, hrs = sorted(_set(minutes, 0, 59)), sorted(_set(hours, 0, 23))
    months = _set(month, 1, 12, MONTHS)
    years = _set(year, 1970, 2199)
    out: list[datetime] = []
    day = after.date()
    for _ in range(366 * 12):
        if day.year in years and day.month in months and _day_matches(day, dom, dow):
            for h in hrs:
                for m in mins:
                    t = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
                    if t > after:
                        out.append(t)
                        if len(out) == count:
                            return out
        day += timedelta(days=1)
    return out


# -- anchors, checked by hand against a calendar (2024-01-01 is a Monday) -----------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ANCHORS = [
    ("cron(0 12 * * ? *)", T0, ["2024-01-01T12:00", "2024-01-02T12:00"]),
    ("cron(5,35 14 * * ? *)", T0, ["2024-01-01T14:05", "2024-01-01T14:35", "2024-01-02T14:05"]),
    ("cron(15 10 ? * 6L 2019-2022)", at("2019-01-01T00:00"), ["2019-01-25T10:15", "2019-02-22T10:15"]),
    ("cron(0/15 * * * ? *)", T0, ["2024-01-01T00:15", "2024-01-01T00:30"]),
    ("cron(0 18 ? * MON-FRI *)", at("2024-01-05T19:00"), ["2024-01-08T18:00", "2024-01-09T18:00"]),
    ("cron(0 8 1 * ? *)", T0, ["2024-01-01T08:00", "2024-02-01T08:00"]),
    ("cron(0/30 20-2 ? * MON-FRI *)", at("2024-01-05T01:45"), ["2024-01-05T02:00", "2024-01-05T02:30",
                                                               "2024-01-05T20:00"]),
    ("cron(0 0 L * ? *)", T0, ["2024-01-31T00:00", "2024-02-29T00:00", "2024-03-31T00:00"]),
    ("cron(0 0 LW * ? *)", at("2024-03-01T00:00"), ["2024-03-29T00:00", "2024-04-30T00:00"]),
    ("cron(0 0 1W * ? *)", at("2024-05-15T00:00"), ["2024-06-03T00:00"]),  # June 1 is a Saturday
    ("cron(0 0 15W * ? *)", at("2024-06-01T00:00"), ["2024-06-14T00:00"]),  # June 15 is a Saturday
    ("cron(0 0 30W * ? *)", at("2024-02-01T00:00"), ["2024-03-29T00:00"]),  # no Feb 30; Mar 30 is a Saturday
    ("cron(0 9 ? * 3#2 *)", T0, ["2024-01-09T09:00", "2024-02-13T09:00"]),
    ("cron(0 0 ? * 2#5 *)", T0, ["2024-01-29T00:00", "2024-04-29T00:00"]),
    ("cron(0 0 ? * L *)", T0, ["2024-01-06T00:00", "2024-01-13T00:00"]),
    ("cron(0 0 29 2 ? *)", at("2024-03-01T00:00"), ["2028-02-29T00:00"]),
    ("cron(0 12 ? * 1 *)", T0, ["2024-01-07T12:00"]),
    ("cron(0 12 ? * 7 *)", T0, ["2024-01-06T12:00"]),
    ("cron(0 0 ? * FRI-MON *)", at("2024-01-02T00:00"), ["2024-01-05T00:00", "2024-01-06T00:00", "2024-01-07T00:00",
                                                         "2024-01-08T00:00"]),
    ("cron(0 0 1 1 ? 2025)", T0, ["2025-01-01T00:00"]),
    ("cron(0 0 31 12 ? 2199)", at("2199-06-01T00:00"), ["2199-12-31T00:00"]),
]


@pytest.mark.parametrize(("expression", "after", "expected"), ANCHORS)
def test_anchor_fire_times(expression: str, after: datetime, expected: list[str]):
    schedule = parse_schedule(expression)
    got = schedule.next_times(after, after, len(expected))
    assert [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in got] == expected
    # the brute-force reading agrees with the anchors too, so it can judge the cases below
    assert [t.strftime("%Y-%m-%dT%H:%M") for t in brute_force(expression[5:-1], after, len(expected))] == expected


CASES = [
    "0 0 * * ? *", "30 * * * ? *", "*/5 * * * ? *", "1/10 * * * ? *", "0 */3 * * ? *", "0 1-5 * * ? *",
    "0 22-3 * * ? *", "59 23 * * ? *", "0 0 1,15 * ? *", "0 0 10-20/5 * ? *", "0 12 L * ? *", "0 12 LW * ? *",
    "0 12 5W * ? *", "0 12 31W * ? *", "0 12 * 2 ? *", "0 0 1 NOV-FEB ? *", "0 0 1 */4 ? *", "0 0 1 JAN,JUL ? *",
    "0 6 ? * MON *", "0 6 ? * 2-6 *", "0 6 ? * SAT,SUN *", "0 6 ? * 6-2 *", "0 6 ? * THU-TUE *", "0 6 ? * 1#1 *",
    "0 6 ? * FRI#3 *", "0 6 ? * 5#5 *", "0 6 ? * 1L *", "0 6 ? * TUEL *", "0 6 ? * L *", "0 0 29 2 ? 2024-2032",
    "0 0 ? * MON 2030", "0 0 1 1 ? 2026/2", "15,45 8-10 ? * MON-FRI *", "0 0/6 ? * * *", "0 12 28-31 * ? *",
    "0 0 1 * ? 2025-2026", "45 23 31 12 ? *", "0 0 ? 2 SUN *", "0 9 ? * MON#2 *", "0 0 L 2 ? *",
]


@pytest.mark.parametrize("body", CASES)
@pytest.mark.parametrize("after", [T0, at("2025-02-27T23:59"), at("2028-12-31T12:00")], ids=["2024", "feb-2025",
                                                                                              "leap-2028"])
def test_next_fire_times_follow_aws_rules(body: str, after: datetime):
    expected = brute_force(body, after, 4)
    got = parse_schedule(f"cron({body})").next_times(after, after, 4)
    assert [t.astimezone(UTC) for t in got] == expected


def test_the_table_is_large_enough():
    assert len(ANCHORS) + len(CASES) >= 60


# -- refusals, with the reason ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 12 * * * *)", "day-of-month and day-of-week cannot both be set; use ? in one of them"),
        ("cron(0 12 ? * ? *)", "day-of-month and day-of-week cannot both be ?; set one of them"),
        ("cron(0 12 * * ?)", "has 5 fields; EventBridge cron has 6"),
        ("cron(60 12 * * ? *)", "minutes: 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is out of range 0-23"),
        ("cron(0 0 32 * ? *)", "day-of-month: 32 is out of range 1-31"),
        ("cron(0 0 * 13 ? *)", "month: 13 is out of range 1-12"),
        ("cron(0 0 ? * 8 *)", "day-of-week: 8 is out of range 1-7"),
        ("cron(0 0 ? * MON/2 *)", "/ is not allowed in day-of-week"),
        ("cron(0 0 ? * 3#1,6#3 *)", "# and nL cannot be combined with other values"),
        ("cron(0 0 ? * 3#6 *)", "write DAY#N with N from 1 to 5"),
        ("cron(0 0 * * ? 1969)", "year: '1969' is out of range 1970-2199"),
        ("cron(0 0 * * ? 2200)", "year: '2200' is out of range 1970-2199"),
        ("cron(0 0 * FOO ? *)", "month: 'FOO' is not a value (1-12 or JAN-DEC)"),
        ("cron(0 0 35W * ? *)", "the day must be 1-31"),
        ("cron(0 0 3#2 * ? *)", "day-of-month: '3#2' is not valid"),
        ("cron(* * * * ? * extra)", "has 7 fields"),
        ("rate(1 minutes)", "use the singular for 1: rate(1 minute)"),
        ("rate(5 minute)", "use the plural for more than 1: rate(5 minutes)"),
        ("rate(0 minutes)", "the value must be at least 1"),
        ("rate(5 seconds)", "write rate(VALUE UNIT)"),
        ("rate(1.5 hours)", "write rate(VALUE UNIT)"),
        ("at(2026-13-01T00:00:00)", "write at(yyyy-mm-ddThh:mm:ss)"),
        ("every 5 minutes", "is not a schedule expression"),
    ],
)
def test_invalid_expressions_say_why(expression: str, reason: str):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expression)
    assert reason in str(info.value)


def test_unknown_time_zone():
    with pytest.raises(ScheduleError, match=r"unknown time zone 'Mars/Olympus'"):
        parse_schedule("cron(0 0 * * ? *)", "Mars/Olympus")


# -- rate and at ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "period"), [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600),
                               ("rate(12 hours)", 43200), ("rate(1 day)", 86400), ("rate(7 days)", 604800)]
)
def test_rates_count_from_the_rules_creation(expression: str, period: int):
    created = at("2024-01-01T10:00:30")
    got = parse_schedule(expression).next_times(created, created, 3)
    assert got == [created + timedelta(seconds=period * k) for k in (1, 2, 3)]
    later = created + timedelta(seconds=period * 10 + 1)
    assert parse_schedule(expression).latest_at_or_before(created, later) == created + timedelta(seconds=period * 10)


def test_at_fires_once_in_its_time_zone():
    schedule = parse_schedule("at(2026-03-01T09:30:00)", "Europe/Paris")
    assert schedule.next_times(T0, T0, 3) == [at("2026-03-01T08:30")]


# -- daylight saving, as EventBridge Scheduler documents it --------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected_utc"),
    [
        # spring forward: 02:30 does not exist on 2024-03-10 in New York: that run is skipped
        ("America/New_York", "cron(30 2 * * ? *)", "2024-03-09T00:00",
         ["2024-03-09T07:30", "2024-03-11T06:30"]),
        # fall back: 01:30 happens twice on 2024-11-03: it runs once, the first time
        ("America/New_York", "cron(30 1 * * ? *)", "2024-11-02T12:00",
         ["2024-11-03T05:30", "2024-11-04T06:30"]),
        ("Europe/Berlin", "cron(30 2 * * ? *)", "2024-03-30T00:00", ["2024-03-30T01:30", "2024-04-01T00:30"]),
        ("Europe/Berlin", "cron(30 2 * * ? *)", "2024-10-26T12:00", ["2024-10-27T00:30", "2024-10-28T01:30"]),
        ("Australia/Sydney", "cron(0 9 ? * MON-FRI *)", "2024-04-05T00:00",
         ["2024-04-07T23:00", "2024-04-08T23:00"]),  # 9:00 local keeps its local time across the change
    ],
)
def test_daylight_saving(zone: str, expression: str, after: str, expected_utc: list[str]):
    got = parse_schedule(expression, zone).next_times(at(after), at(after), len(expected_utc))
    assert [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in got] == expected_utc


# -- the event ------------------------------------------------------------------------------------------


def test_scheduled_event_is_exactly_eventbridges():
    event = scheduled_event(event_id="cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", region="us-east-1",
                            account="123456789012", rule="ExampleRule", scheduled_at=0.4)
    sample = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "events" /
                         "eventbridge-scheduled.json").read_text())
    assert event == sample
    EventBridgeModel(**event)


# -- an independent implementation, when installed -------------------------------------------------------


@pytest.mark.parametrize("body", ["0 12 * * ? *", "0/15 * * * ? *", "0 18 ? * MON-FRI *", "0 8 1 * ? *",
                                  "0 0 15W * ? *", "0 9 ? * 3#2 *", "0 9 ? * 6L *", "0 0 L * ? *",
                                  "10 * ? * SUN,SAT *", "0 0 ? * 2#5 *"])
def test_agrees_with_pyawscron(body: str):
    pyawscron = pytest.importorskip("pyawscron")
    theirs = pyawscron.AWSCron.get_next_n_schedule(5, T0 - timedelta(seconds=1), body)
    ours = parse_schedule(f"cron({body})").next_times(T0, T0 - timedelta(seconds=1), 5)
    assert [t.astimezone(UTC) for t in ours] == theirs
