"""What changed between two valid manifests, in the terms reload acts on.

A function whose runtime settings changed (handler, code, python, environment, timeout, memory,
concurrency, keep-alive) needs new execution environments; one whose triggers or async settings
changed does not. Buckets, schedule rules and listeners are compared one by one, so that an
unchanged one is left running untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lambdad.manifest.model import Function, Manifest, S3Trigger, ScheduleTrigger

#: Settings a reload cannot apply to a running daemon: the store's durability, the API's address,
#: and the total concurrency (the size of the async thread pool). They take effect at the next start.
RESTART_ONLY = ("concurrency", "durability", "api")


def pin_restart_only(old: Manifest, new: Manifest) -> tuple[Manifest, tuple[str, ...]]:
    """`new` with the running values of the restart-only settings, and which of them were edited."""
    edited = tuple(s for s in RESTART_ONLY if getattr(old, s) != getattr(new, s))
    return replace(new, **{s: getattr(old, s) for s in edited}), edited


def runtime_of(fn: Function) -> Function:
    """The part of a function its execution environments depend on."""
    return replace(fn, events=(), async_config=type(fn.async_config)(), description="",
                   recursive_loop=type(fn.recursive_loop).terminate)


def _schedule_rules(m: Manifest) -> dict[str, tuple[str, ScheduleTrigger]]:
    return {
        t.name: (fn.name, replace(t, where=()))
        for fn in m.functions.values()
        for t in fn.events
        if isinstance(t, ScheduleTrigger)
    }


def _s3_subscriptions(m: Manifest, bucket: str) -> list[tuple[str, S3Trigger]]:
    return [
        (fn.name, t)
        for fn in m.functions.values()
        for i, t in enumerate(fn.events)
        if isinstance(t, S3Trigger) and t.bucket == bucket
        for t in [replace(t, where=("functions", fn.name, "events", i, "s3"))]
    ]


@dataclass(frozen=True)
class ManifestDiff:
    functions_added: tuple[str, ...] = ()
    functions_removed: tuple[str, ...] = ()
    functions_recycled: tuple[str, ...] = ()  #: runtime settings changed: new environments
    functions_updated: tuple[str, ...] = ()  #: triggers or async settings only
    buckets_added: tuple[str, ...] = ()
    buckets_removed: tuple[str, ...] = ()
    buckets_changed: tuple[str, ...] = ()  #: folder, versioning or ignore: watched anew
    buckets_retriggered: tuple[str, ...] = ()  #: only which triggers fire changed: watched on
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    listeners_added: tuple[str, ...] = ()
    listeners_removed: tuple[str, ...] = ()
    listeners_changed: tuple[str, ...] = ()
    settings_changed: tuple[str, ...] = field(default=())  #: region, account

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__)

    def summary(self) -> str:
        """One line: `+function a, -bucket b, ~function c (recycled), ~schedule d`."""
        parts = []
        for kind, added, removed, changed in (
            ("function", self.functions_added, self.functions_removed,
             [f"{n} (new environments)" for n in self.functions_recycled] + list(self.functions_updated)),
            ("bucket", self.buckets_added, self.buckets_removed, self.buckets_changed + self.buckets_retriggered),
            ("schedule", self.rules_added, self.rules_removed, self.rules_changed),
            ("listener", self.listeners_added, self.listeners_removed, self.listeners_changed),
        ):
            parts += [f"+{kind} {n}" for n in added]
            parts += [f"-{kind} {n}" for n in removed]
            parts += [f"~{kind} {n}" for n in changed]
        parts += [f"~{s}" for s in self.settings_changed]
        return ", ".join(parts) or "nothing changed"


def _compare(old: dict, new: dict) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    added = tuple(n for n in new if n not in old)
    removed = tuple(n for n in old if n not in new)
    changed = tuple(n for n in new if n in old and old[n] != new[n])
    return added, removed, changed


def manifest_diff(old: Manifest, new: Manifest) -> ManifestDiff:
    f_added, f_removed, _ = _compare(dict(old.functions), dict(new.functions))
    common = [n for n in new.functions if n in old.functions]
    settings = tuple(s for s in ("region", "account") if getattr(old, s) != getattr(new, s))
    # Every environment carries the region and account (AWS_REGION, the context's function ARN).
    recycled = tuple(
        n for n in common if settings or runtime_of(old.functions[n]) != runtime_of(new.functions[n])
    )
    updated = tuple(n for n in common if n not in recycled and old.functions[n] != new.functions[n])

    def bucket_key(m: Manifest) -> dict:
        return {n: replace(b, where=()) for n, b in m.buckets.items()}

    b_added, b_removed, b_changed = _compare(bucket_key(old), bucket_key(new))
    retriggered = tuple(
        n for n in new.buckets
        if n in old.buckets and n not in b_changed and _s3_subscriptions(old, n) != _s3_subscriptions(new, n)
    )
    r_added, r_removed, r_changed = _compare(_schedule_rules(old), _schedule_rules(new))
    l_added, l_removed, l_changed = _compare(
        {n: li.endpoint for n, li in old.listeners.items()}, {n: li.endpoint for n, li in new.listeners.items()}
    )
    return ManifestDiff(f_added, f_removed, recycled, updated, b_added, b_removed, b_changed, retriggered,
                        r_added, r_removed, r_changed, l_added, l_removed, l_changed, settings)
