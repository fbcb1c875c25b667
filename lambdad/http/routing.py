"""Which function an ALB listener sends a request to: its rules, matched as ALB matches them.

Path patterns are case-sensitive, host patterns are not; in both `*` matches any run of characters
(including none) and `?` exactly one. Rules are tried by `priority` (lowest first); rules without
one come after, in manifest order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdad.manifest.model import AlbTrigger, Manifest


def pattern(glob: str, ignore_case: bool = False) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob]
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


@dataclass(frozen=True)
class AlbRule:
    """One ALB listener rule of the manifest, compiled: the function it forwards to when it matches."""

    function: str
    trigger: AlbTrigger
    path: re.Pattern[str]
    host: re.Pattern[str] | None

    def matches(self, method: str, path: str, host: str) -> bool:
        if self.trigger.methods and method not in self.trigger.methods:
            return False
        if self.host is not None and not self.host.match(host.rsplit(":", 1)[0] if ":" in host else host):
            return False
        return self.path.match(path) is not None


def listener_rules(manifest: Manifest, listener: str) -> list[AlbRule]:
    found = [
        (t.priority is None, t.priority or 0, i, AlbRule(fn.name, t, pattern(t.path),
                                                       pattern(t.host, ignore_case=True) if t.host else None))
        for i, (fn, t) in enumerate(
            (fn, t) for fn in manifest.functions.values() for t in fn.events if isinstance(t, AlbTrigger)
        )
        if t.listener == listener
    ]
    return [rule for *_, rule in sorted(found, key=lambda r: r[:3])]


def route(rules: list[AlbRule], method: str, path: str, host: str) -> AlbRule | None:
    return next((r for r in rules if r.matches(method, path, host)), None)
