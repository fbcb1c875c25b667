"""Which files are objects, and which triggers an object event fires: pure matching rules."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lambdad.manifest.model import Bucket, Manifest, S3Trigger

#: Editor swap and backup files, partial downloads and OS litter: never objects, in any bucket.
DEFAULT_IGNORE = (
    "*.swp", "*.swo", "*.swx", ".*.sw?", "*~", ".#*", "#*#", "*.tmp", "*.temp", "*.part", "*.partial",
    "*.crdownload", "*.download", ".DS_Store", "._*", "Thumbs.db", "desktop.ini", "4913", ".~lock.*#",
    ".goutputstream-*", "*.kate-swp", ".lambdad-tmp-*",
)


class IgnoreRules:
    """Glob patterns matched against a file's name and against its whole key (one compiled regex)."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        self._match = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match

    @classmethod
    def for_bucket(cls, bucket: Bucket) -> IgnoreRules:
        return cls(DEFAULT_IGNORE + tuple(bucket.ignore))

    def __call__(self, key: str) -> bool:
        """True if the file at `key` is not an object: its name, or the key, matches a pattern."""
        return bool(self._match(key.rsplit("/", 1)[-1]) or self._match(key))

    def __repr__(self) -> str:
        return f"IgnoreRules({len(self.patterns)} patterns)"


def event_matches(configured: str, event_name: str) -> bool:
    """`s3:ObjectCreated:*` matches `ObjectCreated:Put`; configured names keep the `s3:` prefix."""
    configured = configured.removeprefix("s3:")
    if configured.endswith(":*"):
        return event_name.startswith(configured[:-1])
    return configured == event_name


def trigger_matches(trigger: S3Trigger, event_name: str, key: str) -> bool:
    """Prefix and suffix match the raw key, case-sensitively."""
    return (
        any(event_matches(e, event_name) for e in trigger.events)
        and key.startswith(trigger.prefix)
        and key.endswith(trigger.suffix)
    )


@dataclass(frozen=True)
class Subscription:
    function: str
    trigger: S3Trigger

    @property
    def configuration_id(self) -> str:
        """The trigger's `id`, or a stable one derived from the function and the trigger's place."""
        if self.trigger.id:
            return self.trigger.id
        index = self.trigger.where[-2] if len(self.trigger.where) >= 2 else 0
        return f"lambdad-{self.function}-{index}"


def subscriptions(manifest: Manifest, bucket: str) -> list[Subscription]:
    return [
        Subscription(fn.name, t)
        for fn in manifest.functions.values()
        for t in fn.events
        if isinstance(t, S3Trigger) and t.bucket == bucket
    ]


def matching(subs: Iterable[Subscription], event_name: str, key: str) -> Iterator[Subscription]:
    return (s for s in subs if trigger_matches(s.trigger, event_name, key))


def _types_intersect(a: Iterable[str], b: Iterable[str]) -> bool:
    for x in a:
        for y in b:
            x1, y1 = x.removeprefix("s3:"), y.removeprefix("s3:")
            if x1 == y1 or event_matches(x, y1.replace("*", "")) or event_matches(y, x1.replace("*", "")):
                return True
    return False


def overlap(a: S3Trigger, b: S3Trigger) -> bool:
    """S3's rule: two configurations conflict when their event types intersect and their prefixes
    and their suffixes both overlap (one is a prefix, resp. suffix, of the other)."""
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes and suffixes and _types_intersect(a.events, b.events)
