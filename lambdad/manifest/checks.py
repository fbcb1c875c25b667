"""Second validation layer: rules that span fields, which a JSON Schema cannot express.

Each check is a small generator of `Finding`s over the built model. This module holds the machinery
(a registry of checks, run in the order registered) and the checks of the manifest's own structure:
names and references between its sections. Each feature keeps the checks of its own rules beside it
(`lambdad/<feature>/checks.py`) and they are registered from above (`lambdad.validation`), so that
this layer imports no feature. Names follow AWS's own rules (function names, S3 bucket names, SQS
queue names).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from lambdad.manifest import model as m
from lambdad.manifest.problems import DocPath, did_you_mean


@dataclass(frozen=True)
class Finding:
    where: DocPath
    message: str
    on_key: bool = False  #: point at the key that names `where` rather than at its value
    #: For "X is not defined": the section and name looked for, so that a reference to a part that is
    #: there but could not be read (and so was left out of the model) is not reported as missing too.
    refers_to: tuple[str, str] | None = None
    known: tuple[str, ...] = ()  #: with refers_to: the names the section has in the model


def missing_message(kind: str, name: str, names: Iterable[str]) -> str:
    names = sorted(names)
    listed = ", ".join(names) or "none defined"
    return f"{kind} {name!r} is not defined{did_you_mean(name, names)} (known: {listed})"


Check = Callable[[m.Manifest], Iterator[Finding]]

#: The checks every validation runs, in the order registered; findings that make the manifest invalid.
_CHECKS: list[Check] = []
#: Findings that do not make the manifest invalid: printed as warnings.
_WARNINGS: list[Check] = []


def register(*checks: Check, warning: bool = False) -> None:
    """Add `checks` to every later validation, after those registered before (a check added twice runs once).

    Args:
        warning: the checks' findings are warnings: they do not make the manifest invalid.
    """
    into = _WARNINGS if warning else _CHECKS
    into.extend(check for check in checks if check not in into)


def registered(warning: bool = False) -> tuple[Check, ...]:
    """The checks (or the warning checks) validation runs now, in order."""
    return tuple(_WARNINGS if warning else _CHECKS)


def run_checks(man: m.Manifest, checks: Iterable[Check] | None = None) -> list[Finding]:
    """Every finding of `checks` (by default the registered checks), check by check."""
    return [finding for check in (registered() if checks is None else checks) for finding in check(man)]


_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LISTENER_NAME = _FUNCTION_NAME
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def bucket_name_error(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None (S3's general purpose bucket rules)."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_NAME.match(name):
        return "must use lowercase letters, digits, dots and hyphens, and begin and end with a letter or digit"
    if ".." in name:
        return "must not contain two adjacent dots"
    try:
        ipaddress.IPv4Address(name)
        return "must not be formatted as an IP address"
    except ValueError:
        pass
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "uses a prefix or suffix that S3 reserves"
    return None


def check_names(man: m.Manifest) -> Iterator[Finding]:
    for name in man.functions:
        if not _FUNCTION_NAME.match(name):
            yield Finding(("functions", name), f"function name {name!r} must be 1 to 64 letters, digits, - or _", True)
    for name in man.buckets:
        why = bucket_name_error(name)
        if why:
            yield Finding(("buckets", name), f"bucket name {name!r} {why}", True)
    for name, queue in man.queues.items():
        base = name.removesuffix(".fifo")
        if not _QUEUE_NAME.match(base):
            yield Finding(queue.where, f"queue name {name!r} must be 1 to 80 letters, digits, - or _", True)
        if queue.fifo != name.endswith(".fifo"):
            yield Finding(
                queue.where, f"queue {name!r}: a FIFO queue's name must end in .fifo, and only a FIFO's", True
            )
    for name, stream in man.streams.items():
        if not _STREAM_NAME.match(name):
            yield Finding(stream.where, f"stream name {name!r} must be 1 to 128 letters, digits, ., - or _", True)
    for name, listener in man.listeners.items():
        if listener.url_of is None and not _LISTENER_NAME.match(name):
            yield Finding(("listeners", name), f"listener name {name!r} must be 1 to 64 letters, digits, - or _", True)


def _missing(where: DocPath, kind: str, name: str, known: dict[str, object] | object) -> Finding:
    names = tuple(known) if isinstance(known, dict) else ()
    return Finding(where, missing_message(kind, name, names), refers_to=(f"{kind}s", name), known=names)


def check_references(man: m.Manifest) -> Iterator[Finding]:
    sections = {
        m.TargetKind.function: dict(man.functions),
        m.TargetKind.queue: dict(man.queues),
        m.TargetKind.bucket: dict(man.buckets),
    }
    for fn in man.functions.values():
        cfg = fn.async_config
        for target in (cfg.dead_letter, cfg.on_success, cfg.on_failure):
            if target and target.kind in sections and target.name not in sections[target.kind]:
                yield _missing(target.where, target.kind.value, target.name, sections[target.kind])
            elif target and target.kind is m.TargetKind.queue and man.queues[target.name].fifo:
                yield Finding(target.where, f"queue {target.name!r} is FIFO: Lambda sends dead letters and "
                                            "destination records to standard queues only")
        for trigger in fn.events:
            if isinstance(trigger, m.S3Trigger) and trigger.bucket not in man.buckets:
                yield _missing((*trigger.where, "bucket"), "bucket", trigger.bucket, dict(man.buckets))
            if isinstance(trigger, m.AlbTrigger | m.ApiTrigger) and trigger.listener not in man.listeners:
                named = {n: li for n, li in man.listeners.items() if li.url_of is None}
                yield _missing((*trigger.where, "listener"), "listener", trigger.listener, named)
            if isinstance(trigger, m.SqsTrigger) and trigger.queue not in man.queues:
                yield _missing((*trigger.where, "queue"), "queue", trigger.queue, dict(man.queues))
            if isinstance(trigger, m.StreamTrigger):
                yield from _stream_trigger(man, trigger, sections)
    for queue in man.queues.values():
        dlq = queue.redrive_dead_letter_queue
        if dlq is None:
            continue
        where = (*queue.where, "redrive", "dead_letter_queue")
        if dlq not in man.queues:
            yield _missing(where, "queue", dlq, dict(man.queues))
        elif man.queues[dlq].fifo != queue.fifo:
            yield Finding(where, f"the dead-letter queue of a {'FIFO' if queue.fifo else 'standard'} queue must "
                                 f"be {'FIFO' if queue.fifo else 'standard'} too")


def _stream_trigger(man: m.Manifest, trigger: m.StreamTrigger, sections: dict) -> Iterator[Finding]:
    stream = man.streams.get(trigger.stream)
    if stream is None:
        yield _missing((*trigger.where, "stream"), "stream", trigger.stream, dict(man.streams))
    elif stream.format != trigger.kind:
        yield Finding((*trigger.where, "stream"), f"stream {stream.name!r} has format {stream.format}: use a "
                                                  f"{stream.format} event for it, not {trigger.kind}")
    if trigger.starting_position == "AT_TIMESTAMP" and trigger.starting_position_timestamp is None:
        yield Finding((*trigger.where, "starting_position"), "AT_TIMESTAMP needs starting_position_timestamp")
    target = trigger.on_failure
    if target and target.kind in sections and target.name not in sections[target.kind]:
        yield _missing(target.where, target.kind.value, target.name, sections[target.kind])
    elif target and target.kind is m.TargetKind.queue and man.queues[target.name].fifo:
        yield Finding(target.where, f"queue {target.name!r} is FIFO: on-failure records go to standard queues only")


register(check_names, check_references)
