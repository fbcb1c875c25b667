"""The event an EventBridge scheduled rule delivers to Lambda."""

from __future__ import annotations

import time
from typing import Any


def rule_arn(region: str, account: str, rule: str) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{rule}"


def scheduled_event(*, event_id: str, region: str, account: str, rule: str, scheduled_at: float) -> dict[str, Any]:
    """`time` is the scheduled time, to the second, UTC, with `Z`; `version` is "0" (SAM's sample omits it)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(scheduled_at)),
        "region": region,
        "resources": [rule_arn(region, account, rule)],
        "detail": {},
    }
