"""What survives a restart of each schedule: when the rule was created (rates count from it) and when
it last fired (one catch-up after downtime, never a burst)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class RuleState:
    name: str
    function: str
    expression: str
    timezone: str
    created_at: float
    last_fire: float | None


def get(tx: sqlite3.Connection, name: str) -> RuleState | None:
    row = tx.execute(
        "SELECT name, function, expression, timezone, created_at, last_fire FROM schedules WHERE name = ?", (name,)
    ).fetchone()
    return RuleState(*row) if row else None


def ensure(tx: sqlite3.Connection, name: str, function: str, expression: str, timezone: str, now: float) -> RuleState:
    """The rule's state; a new or changed rule starts over from `now` (as a rule EventBridge recreates)."""
    old = get(tx, name)
    if old and (old.function, old.expression, old.timezone) == (function, expression, timezone):
        return old
    tx.execute(
        "INSERT OR REPLACE INTO schedules (name, function, expression, timezone, created_at, last_fire) "
        "VALUES (?, ?, ?, ?, ?, NULL)",
        (name, function, expression, timezone, now),
    )
    return RuleState(name, function, expression, timezone, now, None)


def fired(tx: sqlite3.Connection, name: str, scheduled_at: float) -> bool:
    """Record a run; False if that scheduled time (or a later one) already ran."""
    cur = tx.execute(
        "UPDATE schedules SET last_fire = ? WHERE name = ? AND (last_fire IS NULL OR last_fire < ?)",
        (scheduled_at, name, scheduled_at),
    )
    return cur.rowcount == 1
