"""The manifest's rules that come from EventBridge: schedule names are unique, and expressions are
ones EventBridge would accept."""

from __future__ import annotations

from collections.abc import Iterator

from lambdad.manifest import model as m
from lambdad.manifest.checks import Check, Finding
from lambdad.shown import shown


def check_schedule_names(man: m.Manifest) -> Iterator[Finding]:
    rules: dict[str, str] = {}
    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.ScheduleTrigger):
                if trigger.name in rules:
                    yield Finding((*trigger.where, "name"), f"schedule name {trigger.name!r} is already used by "
                                                            f"function {rules[trigger.name]!r}")
                rules.setdefault(trigger.name, fn.name)


#: The longest rate lambdad schedules: EventBridge documents no limit, but its calendar ends in 2199
#: (cron's years), and a period much longer overflows date arithmetic (rate(10^400 minutes) would).
MAX_RATE_DAYS = 36500


def check_schedules(man: m.Manifest) -> Iterator[Finding]:
    """Expressions EventBridge would refuse are refused here, with the reason."""
    from lambdad.triggers.schedules.expressions import describe_problem, parse_schedule  # (APScheduler: only when run)

    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.ScheduleTrigger):
                problem = describe_problem(trigger.expression, trigger.timezone)
                if problem:
                    field = "timezone" if problem.startswith("unknown time zone") else "expression"
                    yield Finding((*trigger.where, field), problem)
                elif parse_schedule(trigger.expression, trigger.timezone).every_s > MAX_RATE_DAYS * 86400:
                    yield Finding((*trigger.where, "expression"), f"{shown(trigger.expression)}: a rate is at most "
                                                                  f"{MAX_RATE_DAYS} days (100 years) here")


CHECKS: tuple[Check, ...] = (check_schedule_names, check_schedules)
