"""The manifest's rules for event source mappings: what Lambda refuses, or advises against, when a
queue's mapping is created."""

from __future__ import annotations

from collections.abc import Iterator

from lambdad.manifest import model as m
from lambdad.manifest.checks import Check, Finding


def _sqs_mappings(man: m.Manifest) -> Iterator[tuple[m.Function, m.SqsTrigger, m.Queue]]:
    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.SqsTrigger) and trigger.queue in man.queues:
                yield fn, trigger, man.queues[trigger.queue]


def check_sqs_mappings(man: m.Manifest) -> Iterator[Finding]:
    """What Lambda refuses when the event source mapping is created."""
    for fn, trigger, queue in _sqs_mappings(man):
        if queue.visibility_timeout_s < fn.timeout_s:
            yield Finding((*trigger.where, "queue"), f"Queue visibility timeout: {queue.visibility_timeout_s:g} "
                                                     f"seconds is less than Function timeout: {fn.timeout_s:g} seconds")
        if queue.fifo and trigger.batch_size > 10:
            yield Finding((*trigger.where, "batch_size"), "a FIFO queue's batch_size is at most 10")
        elif trigger.batch_size > 10 and trigger.maximum_batching_window_s < 1:
            yield Finding((*trigger.where, "batch_size"), "a batch_size over 10 needs maximum_batching_window of at "
                                                          "least 1s")


def sqs_warnings(man: m.Manifest) -> Iterator[Finding]:
    """What Lambda accepts but advises against."""
    for fn, trigger, queue in _sqs_mappings(man):
        if fn.timeout_s <= queue.visibility_timeout_s < 6 * fn.timeout_s:
            yield Finding((*trigger.where, "queue"), f"queue {queue.name!r} has a visibility timeout of "
                          f"{queue.visibility_timeout_s:g}s; AWS recommends at least 6 times the function's timeout "
                          f"({6 * fn.timeout_s:g}s), so that retries of throttled batches do not reappear early")


CHECKS: tuple[Check, ...] = (check_sqs_mappings,)
WARNINGS: tuple[Check, ...] = (sqs_warnings,)
