"""Commands that look into (and tidy) the store: status, dlq, queue. They work with or without a
running daemon: both open the same SQLite file, whose locking keeps them consistent.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdad.cli.common import STATE_DIR_NAME, load, open_store, print_json, print_table, state_dir
from lambdad.clock import SYSTEM_CLOCK, iso_millis
from lambdad.errors import EXIT_OK, ManifestError, UsageError
from lambdad.shown import one_line
from lambdad.sqs_vocabulary import Message, QueueDepth, QueueError
from lambdad.statedir import DaemonInfo, StateDir
from lambdad.store import deadletters, invocations


def cmd_status(args: argparse.Namespace) -> int:
    try:
        manifest = load(args, running=False)
    except ManifestError:
        return _status_of_invalid_manifest(args)
    state = state_dir(args, manifest)
    daemon = state.running_daemon()
    store = open_store(args, manifest)
    try:
        with store.reading() as tx:
            counts, stats = invocations.counts(tx), invocations.stats(tx)
            dead = deadletters.count_by_function(tx)
        depths = _queue_service(store, manifest).depths()
    finally:
        store.close()
    names = list(manifest.functions) + sorted((set(counts) | set(stats) | set(dead)) - set(manifest.functions))
    functions = {}
    for name in names:
        c = counts.get(name, invocations.QueueCounts())
        succeeded, failed = stats.get(name, (0, 0))
        functions[name] = {
            "in_flight": c.in_flight, "queued": c.queued, "retrying": c.retrying,
            "dead_lettered": dead.get(name, 0), "succeeded": succeeded, "failed": failed,
            "in_manifest": name in manifest.functions,
        }
    queue_rows = {q: vars(depths.get(q, QueueDepth())) for q in manifest.queues}
    report = {"daemon": _daemon_info(daemon), "functions": functions, "queues": queue_rows,
              "sqs_mappings": _sqs_mappings(manifest, depths, daemon.sqs_mappings if daemon else {}),
              "stream_mappings": _stream_positions(args, manifest)}
    if args.json:
        print_json(report)
        return EXIT_OK
    _print_daemon(report["daemon"])
    print()
    print_table(
        ["FUNCTION", "IN FLIGHT", "QUEUED", "RETRYING", "DEAD-LETTERED", "SUCCEEDED", "FAILED"],
        [[n + ("" if f["in_manifest"] else " (not in manifest)"), f["in_flight"], f["queued"], f["retrying"],
          f["dead_lettered"], f["succeeded"], f["failed"]] for n, f in functions.items()],
    )
    if queue_rows:
        print()
        print_table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED"],
                    [[q, d["visible"], d["in_flight"], d["delayed"]] for q, d in queue_rows.items()])
    if report["sqs_mappings"]:
        print()
        print_table(["SQS MAPPING", "DEPTH", "IN FLIGHT", "LAST ERROR"],
                    [[key + ("" if m["enabled"] else " (disabled)"), m["depth"], m["in_flight"],
                      _last_error_text(m["last_error"])] for key, m in report["sqs_mappings"].items()])
    if report["stream_mappings"]:
        print()
        print_table(["MAPPING", "SHARD", "LANE", "POSITION", "LAG"],
                    [[m, p["shard"], p["lane"], p["position"] or "not started", "-" if p["lag"] is None else p["lag"]]
                     for m, rows in report["stream_mappings"].items() for p in rows])
    return EXIT_OK


def _sqs_mappings(manifest, depths: dict[str, QueueDepth], errors: dict[str, Any]) -> dict[str, dict]:
    """Each SQS mapping (`FUNCTION/QUEUE`): its queue's depth (visible messages), the messages in flight
    (received, not yet deleted or visible again) and the last batch that failed, as the running daemon
    last wrote it (a mapping's errors live in the daemon, not in the store)."""
    from lambdad.manifest.model import SqsTrigger

    out: dict[str, dict] = {}
    for fn in manifest.functions.values():
        for t in fn.events:
            if not isinstance(t, SqsTrigger) or t.queue not in manifest.queues:
                continue
            key = f"{fn.name}/{t.queue}"
            d = depths.get(t.queue, QueueDepth())
            error = errors.get(key) if isinstance(errors.get(key), dict) else None
            out[key] = {"function": fn.name, "queue": t.queue, "enabled": t.enabled, "depth": d.visible,
                        "in_flight": d.in_flight, "delayed": d.delayed, "last_error": error}
    return out


def _last_error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "-"
    at = error.get("at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if isinstance(at, int | float) else "?"
    return one_line(f"{when}: {error.get('error')}")


def _stream_positions(args: argparse.Namespace, manifest) -> dict[str, list[dict[str, Any]]]:
    """Each stream mapping's position and lag (records not yet done) per shard and lane."""
    from lambdad.manifest.model import StreamTrigger
    from lambdad.services.stream_ids import number_of, shard_id
    from lambdad.services.streams import Streams
    from lambdad.triggers.mappings.streams import mapping_id

    out: dict[str, list[dict[str, Any]]] = {}
    store = open_store(args, manifest)
    try:
        service = Streams(store, SYSTEM_CLOCK)
        for fn in manifest.functions.values():
            for t in fn.events:
                if not isinstance(t, StreamTrigger) or t.stream not in manifest.streams:
                    continue
                key = mapping_id(fn.name, t.stream)
                stream = manifest.streams[t.stream]
                # Before any daemon ran the mapping, its lag is known only if it starts at the first record.
                lanes = service.progress(key, stream, t.parallelization_factor, t.starting_position == "TRIM_HORIZON")
                out[key] = [{"shard": shard_id(p.shard), "lane": p.lane,
                             "position": None if p.position is None else number_of(stream, p.shard, p.position),
                             "lag": p.lag} for p in lanes]
    finally:
        store.close()
    return out


def _status_of_invalid_manifest(args: argparse.Namespace) -> int:
    """The manifest on disk is invalid: say what the daemon runs (if one runs) and what is wrong."""
    from lambdad.manifest import find_manifest, load_manifest
    from lambdad.validation import register_feature_checks

    register_feature_checks()
    path = find_manifest(args.file)
    state = StateDir(Path(args.state_dir).absolute() if args.state_dir else path.parent.absolute() / STATE_DIR_NAME)
    info = _daemon_info(state.running_daemon())
    if not info["running"]:
        load_manifest(path)  # raises: every problem, one per line, and exit code 2, as any command
    if args.json:
        print_json({"daemon": info})
    else:
        _print_daemon(info)  # the daemon's own account of the problems of the last save
    return EXIT_OK


def _print_daemon(info: dict[str, Any]) -> None:
    if not info["running"]:
        print("daemon: not running")
        return
    print(f"daemon: running, pid {info['pid']}")
    if info.get("config") == "stale":
        errors = info.get("config_errors", [])
        print(f"configuration: stale: the last save of the manifest has {len(errors)} problem(s); "
              "the previous configuration keeps running until it is fixed")
        for line in errors:
            print(f"  {line}")
    else:
        print("configuration: current")
    _print_failing(info.get("failing") or {})
    if info.get("api"):
        print(f"api: {info['api']}")
    urls = info.get("urls") or {}
    for name, address in (info.get("listeners") or {}).items():
        if name not in {f"{fn}.url" for fn in urls}:
            print(f"listener {name}: {address}")
    for fn, address in urls.items():
        print(f"function URL of {fn}: {address}/" if address else f"function URL of {fn}: not served (see the "
                                                                     "daemon's warning)")


def _print_failing(failing: dict[str, Any]) -> None:
    """Parts of the daemon that cannot do their work now (a full disk): they retry, nothing is lost."""
    from lambdad.health import LABELS

    for name, f in failing.items():
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f.get("since", 0)))
        print(f"failing: {LABELS.get(name, name)}: {f.get('error')} (since {since}, {f.get('attempts')} attempt(s); "
              "retrying, nothing accepted is lost)")


def _daemon_info(info: DaemonInfo | None) -> dict[str, Any]:
    if info is None:
        return {"running": False}
    return {"running": True, **info.to_json()}


# -- dlq ----------------------------------------------------------------------------------------------


def _dead_letter_json(d: deadletters.DeadLetter, full: bool = False) -> dict[str, Any]:
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
    manifest = load(args)
    queue = _queue(manifest, args.queue) if args.queue else None
    target = f"queue:{args.queue}" if args.queue else None
    store = open_store(args, manifest)
    try:
        found = _invocations(store, manifest).dead_letters(args.function, target)
        depths = _queue_service(store, manifest).depths() if queue is not None else {}
    finally:
        store.close()
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


def _redrive_line(manifest, queue, depths: dict[str, QueueDepth]) -> str:
    """Where the queue's own failed messages go: its redrive policy's dead-letter queue, and its depth."""
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
    store = open_store(args, manifest)
    try:
        found = _invocations(store, manifest).dead_letter(args.id)
    finally:
        store.close()
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


def _invocations(store, manifest):
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.services.asyncinvoke import AsyncInvocations

    return AsyncInvocations(store, SYSTEM_CLOCK, manifest)


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    manifest = load(args)
    store = open_store(args, manifest)
    try:
        count = _invocations(store, manifest).redrive(_selected(args), args.function)
    finally:
        store.close()
    print(f"redrove {count} event(s)")
    return EXIT_OK


def cmd_dlq_purge(args: argparse.Namespace) -> int:
    manifest = load(args)
    store = open_store(args, manifest)
    try:
        removed = _invocations(store, manifest).purge(args.function)
    finally:
        store.close()
    print(f"purged {removed} dead letter(s)")
    return EXIT_OK


# -- queue --------------------------------------------------------------------------------------------


def _queue(manifest, name: str):
    if name not in manifest.queues:
        known = ", ".join(manifest.queues) or "none defined"
        raise UsageError(f"queue {name!r} is not defined (queues: {known})")
    return manifest.queues[name]


def _queue_service(store, manifest):
    """The queues service over an open store (a running daemon's pollers notice what it sends
    within a quarter of a second: there is no daemon here to wake)."""
    from lambdad.clock import SYSTEM_CLOCK
    from lambdad.services.queues import Queues

    return Queues(store, SYSTEM_CLOCK, manifest)


@contextmanager
def _queues(args: argparse.Namespace, manifest) -> Iterator:
    """The queues service over the state folder's store, closed after the command."""
    store = open_store(args, manifest)
    try:
        yield _queue_service(store, manifest)
    finally:
        store.close()


def cmd_queue_list(args: argparse.Namespace) -> int:
    manifest = load(args)
    with _queues(args, manifest) as service:
        depths = service.depths()
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

    manifest = load(args)
    queue = _queue(manifest, args.name)
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
    with _queues(args, manifest) as service:
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


def cmd_stream_put(args: argparse.Namespace) -> int:
    """Commit the record; a running daemon's mappings see it within a quarter of a second."""
    from lambdad.payloads.streams import change_record, dynamodb_partition_key
    from lambdad.services.stream_ids import StreamError, number_of, shard_name
    from lambdad.services.streams import Streams

    manifest = load(args)
    if args.name not in manifest.streams:
        known = ", ".join(manifest.streams) or "none defined"
        raise UsageError(f"stream {args.name!r} is not defined (streams: {known})")
    stream = manifest.streams[args.name]
    if stream.format == "dynamodb":
        if not args.change:
            raise UsageError(f"stream {stream.name!r} is a dynamodb stream: give --change FILE")
        try:
            text = Path(args.change).read_text()
        except OSError as e:
            raise UsageError(f"cannot read {args.change!r}: {e.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise UsageError(f"{args.change}: not JSON ({e})") from None
        try:
            change = change_record(doc)
        except ValueError as e:
            raise UsageError(f"{args.change}: {e}") from None
        data, key = json.dumps(change).encode(), dynamodb_partition_key(change)
    else:
        if args.change:
            raise UsageError(f"stream {stream.name!r} is a kinesis stream: --change is for dynamodb streams")
        if (args.data is None) == (args.data_file is None):
            raise UsageError("give the data, or --data-file")
        try:
            data = Path(args.data_file).read_bytes() if args.data_file else args.data.encode()
        except OSError as e:
            raise UsageError(f"cannot read {args.data_file!r}: {e.strerror}") from None
        key = args.partition_key or (args.data if args.data else args.data_file)
    try:  # PutRecord's checks (the service's), before the state folder is opened
        Streams.check(key, data)
    except StreamError as e:
        raise UsageError(f"{e.code}: {e}") from None
    store = open_store(args, manifest)
    try:
        record = Streams(store, SYSTEM_CLOCK).put(stream, key, data)
    finally:
        store.close()
    doc = {"ShardId": shard_name(stream, record.shard), "SequenceNumber": number_of(stream, record.shard, record.seq)}
    if args.json:
        print_json(doc)
    else:
        print(f"put into {stream.name}: {doc['ShardId']} SequenceNumber {doc['SequenceNumber']}")
    return EXIT_OK


def cmd_queue_receive(args: argparse.Namespace) -> int:
    manifest = load(args)
    queue = _queue(manifest, args.name)
    if not 1 <= args.max <= 10:
        raise UsageError("--max must be between 1 and 10 (as SQS allows)")
    with _queues(args, manifest) as service:
        got = service.receive(queue, args.max)
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
    queue = _queue(manifest, args.name)
    with _queues(args, manifest) as service:
        removed = service.purge(queue)
    print(f"purged {removed} message(s) from {args.name}")
    return EXIT_OK


# -- schedules ----------------------------------------------------------------------------------------


def _rule_created_at(args: argparse.Namespace, manifest, name: str, default: float) -> float:
    """When the rule was created as far as a running (or past) daemon knows; rates count from it."""
    from lambdad.store import rules

    store = open_store(args, manifest)
    try:
        with store.reading() as tx:
            state = rules.get(tx, name)
    finally:
        store.close()
    return state.created_at if state else default


def cmd_schedules(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from lambdad.triggers.schedules.service import manifest_rules

    manifest = load(args)
    if args.next < 1:
        raise UsageError("--next must be at least 1")
    if args.from_time:
        try:
            after = datetime.fromisoformat(args.from_time.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--from: {args.from_time!r} is not an ISO-8601 time (2026-01-31T12:00:00Z)") from None
        after = after if after.tzinfo else after.replace(tzinfo=UTC)
    else:
        after = datetime.now(UTC)
    listing = []
    for rule in manifest_rules(manifest):
        created = datetime.fromtimestamp(_rule_created_at(args, manifest, rule.name, after.timestamp()), UTC)
        times = rule.schedule.next_times(created, after, args.next) if rule.trigger.enabled else []
        listing.append({
            "function": rule.function, "name": rule.name, "expression": rule.schedule.expression,
            "timezone": rule.schedule.timezone, "enabled": rule.trigger.enabled,
            "next": [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times],
            "_local": [t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") for t in times],
        })
    if args.json:
        print_json([{k: v for k, v in r.items() if not k.startswith("_")} for r in listing])
        return EXIT_OK
    if not listing:
        print("no schedules")
    for r in listing:
        zone = f"  ({r['timezone']})" if r["timezone"] != "UTC" else ""
        state = "" if r["enabled"] else "  disabled"
        print(f"{r['name']}  {r['expression']}{zone}  -> {r['function']}{state}")
        for utc_time, local in zip(r["next"], r["_local"], strict=True):
            print(f"  {utc_time}   {local}")
    return EXIT_OK


def cmd_fire(args: argparse.Namespace) -> int:
    from lambdad.triggers.schedules.service import manifest_rules, rule_payload

    manifest = load(args)
    found = {r.name: r for r in manifest_rules(manifest)}
    rule = found.get(args.rule)
    if rule is None:
        raise UsageError(f"schedule {args.rule!r} is not defined (schedules: {', '.join(found) or 'none'})")
    store = open_store(args, manifest)
    try:
        invocations = _invocations(store, manifest)
        request_id = invocations.fire(rule.function, rule_payload(manifest, rule, invocations.clock.time()))
    finally:
        store.close()
    print(f"queued {rule.name} for {rule.function}: RequestId {request_id}")
    return EXIT_OK
