"""The manifest's rules that come from S3: bucket folders do not nest, and notification
configurations on a bucket do not overlap (S3 refuses them)."""

from __future__ import annotations

from collections.abc import Iterator

from lambdad.manifest import model as m
from lambdad.manifest.checks import Check, Finding
from lambdad.triggers.buckets.rules import overlap


def check_buckets_do_not_nest(man: m.Manifest) -> Iterator[Finding]:
    buckets = sorted(man.buckets.values(), key=lambda b: b.name)
    for i, a in enumerate(buckets):
        for b in buckets[i + 1 :]:
            if a.path == b.path or a.path in b.path.parents or b.path in a.path.parents:
                inner, outer = (a, b) if b.path in a.path.parents or a.path == b.path else (b, a)
                yield Finding(
                    (*inner.where, "path"),
                    f"bucket {inner.name!r} folder overlaps bucket {outer.name!r} ({outer.path}); "
                    "folders must not nest",
                )


def check_s3_overlaps(man: m.Manifest) -> Iterator[Finding]:
    """S3 refuses two notification configurations on a bucket that could both fire for one event."""
    seen: list[tuple[str, m.S3Trigger]] = []
    for fn in man.functions.values():
        for trigger in fn.events:
            if not isinstance(trigger, m.S3Trigger):
                continue
            for other_fn, other in seen:
                if other.bucket == trigger.bucket and overlap(trigger, other):
                    yield Finding(trigger.where, (
                        f"overlaps the s3 trigger of function {other_fn!r} ({_describe(other)}) on bucket "
                        f"{trigger.bucket!r}: Configurations overlap. Configurations on the same bucket cannot "
                        "share a common event type (give them different prefixes or suffixes)"
                    ))
            seen.append((fn.name, trigger))


def _describe(t: m.S3Trigger) -> str:
    parts = [", ".join(t.events)]
    if t.prefix:
        parts.append(f"prefix {t.prefix!r}")
    if t.suffix:
        parts.append(f"suffix {t.suffix!r}")
    return ", ".join(parts)


CHECKS: tuple[Check, ...] = (check_buckets_do_not_nest, check_s3_overlaps)
