"""`lambdad schedules` (every rule and its next fire times) and `lambdad fire RULE` (a run now, queued
as the rule's own run would be). Neither needs the scheduler: fire times come from the expressions,
the times rates count from from the store (what a daemon that ran the rules recorded)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from lambdad.cli.common import load, open_services, print_json
from lambdad.clock import SYSTEM_CLOCK, utc
from lambdad.errors import EXIT_OK, UsageError


def cmd_schedules(args: argparse.Namespace) -> int:
    from lambdad.triggers.schedules.service import manifest_rules

    manifest = load(args)
    if args.next < 1:
        raise UsageError("--next must be at least 1")
    after = _from_time(args.from_time) if args.from_time else utc(SYSTEM_CLOCK.time())
    rules = manifest_rules(manifest)
    created: dict[str, float] = {}
    if rules:  # (no rules: the state folder is not opened)
        with open_services(args, manifest) as services:
            created = services.schedules.created_at(rule.name for rule in rules)
    listing = []
    for rule in rules:
        since = utc(created.get(rule.name, after.timestamp()))
        times = rule.schedule.next_times(since, after, args.next) if rule.trigger.enabled else []
        listing.append({
            "function": rule.function, "name": rule.name, "expression": rule.schedule.expression,
            "timezone": rule.schedule.timezone, "enabled": rule.trigger.enabled,
            "next": [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times],
            "_local": [t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") for t in times],
        })
    if args.json:
        print_json([{k: v for k, v in r.items() if not k.startswith("_")} for r in listing])
        return EXIT_OK
    if not listing:
        print("no schedules")
    for r in listing:
        zone = f"  ({r['timezone']})" if r["timezone"] != "UTC" else ""
        state = "" if r["enabled"] else "  disabled"
        print(f"{r['name']}  {r['expression']}{zone}  -> {r['function']}{state}")
        for utc_time, local in zip(r["next"], r["_local"], strict=True):
            print(f"  {utc_time}   {local}")
    return EXIT_OK


def _from_time(text: str) -> datetime:
    """`--from`: an ISO-8601 time, UTC unless it says otherwise."""
    try:
        after = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--from: {text!r} is not an ISO-8601 time (2026-01-31T12:00:00Z)") from None
    return after if after.tzinfo else after.replace(tzinfo=UTC)


def cmd_fire(args: argparse.Namespace) -> int:
    from lambdad.triggers.schedules.service import manifest_rules, rule_payload

    manifest = load(args)
    found = {r.name: r for r in manifest_rules(manifest)}
    rule = found.get(args.rule)
    if rule is None:
        raise UsageError(f"schedule {args.rule!r} is not defined (schedules: {', '.join(found) or 'none'})")
    with open_services(args, manifest) as services:
        invocations = services.invocations
        request_id = invocations.enqueue(rule.function, rule_payload(manifest, rule, services.clock.time()),
                                         source="schedule")  # (as its own run would be)
    print(f"queued {rule.name} for {rule.function}: RequestId {request_id}")
    return EXIT_OK
