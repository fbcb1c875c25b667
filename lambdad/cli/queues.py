"""`lambdad queue list|receive|send|purge`: the local queues through the queues service, so a message
sent here is checked as SendMessage checks it. A running daemon's mappings pick up what is sent
within a quarter of a second (there is no daemon here to wake).
"""

from __future__ import annotations

import argparse
import base64
from typing import TYPE_CHECKING, Any

from lambdad.cli.common import load, open_services, print_json, print_table
from lambdad.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from lambdad.manifest import Manifest
    from lambdad.manifest.model import Queue
    from lambdad.sqs_vocabulary import Message


def defined_queue(manifest: Manifest, name: str) -> Queue:
    """The manifest's queue `name`, or a usage error that lists the queues there are."""
    if name not in manifest.queues:
        known = ", ".join(manifest.queues) or "none defined"
        raise UsageError(f"queue {name!r} is not defined (queues: {known})")
    return manifest.queues[name]


def cmd_queue_list(args: argparse.Namespace) -> int:
    from lambdad.sqs_vocabulary import QueueDepth

    manifest = load(args)
    with open_services(args, manifest) as services:
        depths = services.queues.depths()
    rows: dict[str, dict[str, Any]] = {}
    for name, queue in manifest.queues.items():
        rows[name] = vars(depths.get(name, QueueDepth())).copy()
        dlq = queue.redrive_dead_letter_queue
        if dlq:
            d = depths.get(dlq, QueueDepth())
            rows[name]["dead_letter_queue"] = {"name": dlq, "depth": d.visible + d.in_flight + d.delayed}
    if args.json:
        print_json(rows)
        return EXIT_OK
    print_table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "DEAD-LETTER QUEUE"],
                [[q, d["visible"], d["in_flight"], d["delayed"],
                  f"{d['dead_letter_queue']['name']} ({d['dead_letter_queue']['depth']})" if "dead_letter_queue" in d
                  else ""] for q, d in rows.items()], empty="no queues defined")
    return EXIT_OK


def cmd_queue_send(args: argparse.Namespace) -> int:
    """Commit the message; a running daemon's mappings pick it up within a quarter of a second."""
    from lambdad.cli.common import read_payload
    from lambdad.durations import parse_duration
    from lambdad.sqs_vocabulary import QueueError

    manifest = load(args)
    queue = defined_queue(manifest, args.name)
    attributes = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr {item!r}: use NAME=VALUE")
        attributes[key] = {"DataType": "String", "StringValue": value}
    try:
        delay = parse_duration(args.delay) if args.delay else None
    except ValueError as e:
        raise UsageError(f"--delay: {e}") from None
    try:  # the checks SendMessage makes: a message in the store is always one a mapping can deliver
        text = read_payload(args.body).decode()
    except UnicodeDecodeError:
        raise UsageError("InvalidMessageContents: an SQS message body is text (UTF-8); send binary data as "
                         "base64") from None
    with open_services(args, manifest) as services:
        service = services.queues
        try:  # SendMessage's checks and rules, as the SQS API applies them
            sent = service.send(queue, service.message(queue, text, attributes, delay, args.group, args.dedup_id))
        except QueueError as e:
            raise UsageError(f"{e.code}: {e}") from None
    doc = {"MessageId": sent.message_id}
    if sent.sequence is not None:
        doc["SequenceNumber"] = sent.sequence_number
    if args.json:
        print_json(doc)
    else:
        print(f"sent to {queue.name}: MessageId {sent.message_id}" + (" (a duplicate: not sent again)"
                                                                        if sent.duplicate else ""))
    return EXIT_OK


def cmd_queue_receive(args: argparse.Namespace) -> int:
    manifest = load(args)
    queue = defined_queue(manifest, args.name)
    if not 1 <= args.max <= 10:
        raise UsageError("--max must be between 1 and 10 (as SQS allows)")
    with open_services(args, manifest) as services:
        got = services.queues.receive(queue, args.max)
    docs = [_message_json(m) for m in got]
    if args.json:
        print_json(docs)
        return EXIT_OK
    if not docs:
        print("no visible messages")
    for doc in docs:
        print(f"MessageId: {doc['MessageId']}  ReceiveCount: {doc['Attributes']['ApproximateReceiveCount']}")
        for key, attr in doc["MessageAttributes"].items():
            print(f"  {key}: {attr.get('StringValue', attr.get('BinaryValue'))}")
        print(f"  Body: {doc['Body']}")
    return EXIT_OK


def _message_json(m: Message) -> dict[str, Any]:
    from lambdad.payloads.sqs_messages import deliverable_attributes

    try:
        body = m.body.decode()
    except UnicodeDecodeError:
        body = base64.b64encode(m.body).decode()
    doc = {"MessageId": m.message_id, "ReceiptHandle": m.receipt, "MD5OfBody": m.md5_of_body, "Body": body,
           "Attributes": m.system_attributes(), "MessageAttributes": deliverable_attributes(m.attributes)[0]}
    return {k: v for k, v in doc.items() if v is not None}


def cmd_queue_purge(args: argparse.Namespace) -> int:
    manifest = load(args)
    queue = defined_queue(manifest, args.name)
    with open_services(args, manifest) as services:
        removed = services.queues.purge(queue)
    print(f"purged {removed} message(s) from {args.name}")
    return EXIT_OK
