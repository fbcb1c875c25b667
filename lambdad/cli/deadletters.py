"""`lambdad dlq list|show|redrive|purge`: async invocations that failed for good, through the async
invocations service (a redrive queues them again as new events, with fresh attempts)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from lambdad.cli.common import load, open_services, print_json, print_table
from lambdad.cli.queues import defined_queue
from lambdad.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from lambdad.manifest import Manifest
    from lambdad.manifest.model import Queue
    from lambdad.services.asyncinvoke import DeadLetter
    from lambdad.sqs_vocabulary import QueueDepth


def _dead_letter_json(d: DeadLetter, full: bool = False) -> dict[str, Any]:
    from lambdad.clock import iso_millis

    doc: dict[str, Any] = {
        "id": d.id, "function": d.function, "request_id": d.request_id, "condition": d.condition,
        "invocations": d.invocations, "error_type": d.error_type, "error_message": d.error_message,
        "target": d.target or None, "enqueued_at": iso_millis(d.enqueued_at), "failed_at": iso_millis(d.failed_at),
    }
    if full:
        doc["payload"] = _json_or_text(d.payload)
        doc["last_error"] = _json_or_text(d.response) if d.response else None
        doc["message_id"] = d.message_id
    return doc


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    """Async invocations that failed for good. With --queue: those whose dead letter went to that queue
    (an async dead_letter or on_failure target), and the queue's own redrive dead-letter queue, which
    holds SQS messages, not async events: a different thing a user may be looking for."""
    from lambdad.clock import iso_millis

    manifest = load(args)
    queue = defined_queue(manifest, args.queue) if args.queue else None
    target = f"queue:{args.queue}" if args.queue else None
    with open_services(args, manifest) as services:
        found = services.invocations.dead_letters(args.function, target)
        depths = services.queues.depths() if queue is not None else {}
    if args.json:
        print_json([_dead_letter_json(d) for d in found])
        return EXIT_OK
    if queue is not None:
        print(f"async invocations whose dead letter was sent to queue {queue.name} (lambdad dlq lists async "
              "dead letters):")
    print_table(
        ["ID", "FUNCTION", "REQUEST ID", "CONDITION", "INVOCATIONS", "ERROR", "FAILED AT", "TARGET"],
        [[d.id, d.function, d.request_id, d.condition, d.invocations, d.error_type or "", iso_millis(d.failed_at),
          d.target or "-"] for d in found],
        empty="no dead letters",
    )
    if queue is not None:
        print()
        print(_redrive_line(manifest, queue, depths))
    return EXIT_OK


def _redrive_line(manifest: Manifest, queue: Queue, depths: dict[str, QueueDepth]) -> str:
    """Where the queue's own failed messages go: its redrive policy's dead-letter queue, and its depth."""
    from lambdad.sqs_vocabulary import QueueDepth

    dlq = queue.redrive_dead_letter_queue
    sources = sorted(q.name for q in manifest.queues.values() if q.redrive_dead_letter_queue == queue.name)
    fed = f"; it is the dead-letter queue of {', '.join(sources)}" if sources else ""
    if dlq is None:
        return f"queue {queue.name} has no redrive dead-letter queue (redrive.dead_letter_queue){fed}"
    d = depths.get(dlq, QueueDepth())
    held = d.visible + d.in_flight + d.delayed
    return (f"queue {queue.name}'s own messages that failed go to its dead-letter queue {dlq}: {held} message(s) "
            f"(see lambdad queue receive {dlq}){fed}")


def cmd_dlq_show(args: argparse.Namespace) -> int:
    manifest = load(args)
    with open_services(args, manifest) as services:
        found = services.invocations.dead_letter(args.id)
    if found is None:
        raise UsageError(f"no dead letter with id {args.id} (see lambdad dlq list)")
    doc = _dead_letter_json(found, full=True)
    if args.json:
        print_json(doc)
        return EXIT_OK
    for key in ("id", "function", "request_id", "condition", "invocations", "error_type", "error_message", "target",
                "message_id", "enqueued_at", "failed_at"):
        print(f"{key + ':':<15}{'' if doc[key] is None else doc[key]}")
    print("payload:")
    print(json.dumps(doc["payload"], indent=2))
    last = doc["last_error"]
    if isinstance(last, dict) and last.get("stackTrace"):
        print("stack trace:")
        print("".join(last["stackTrace"]).rstrip())
    return EXIT_OK


def _selected(args: argparse.Namespace) -> list[int] | None:
    """The dead-letter ids to redrive; None: all of them (of `--function`)."""
    if args.all and args.ids:
        raise UsageError("give dead-letter ids or --all, not both")
    if args.all:
        return None
    if not args.ids:
        raise UsageError("give dead-letter ids, or --all")
    return args.ids


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    manifest = load(args)
    with open_services(args, manifest) as services:
        count = services.invocations.redrive(_selected(args), args.function)
    print(f"redrove {count} event(s)")
    return EXIT_OK


def cmd_dlq_purge(args: argparse.Namespace) -> int:
    manifest = load(args)
    with open_services(args, manifest) as services:
        removed = services.invocations.purge(args.function)
    print(f"purged {removed} dead letter(s)")
    return EXIT_OK
