"""`lambdad status`: the daemon, the async queue and outcome counts, the queues and the event source
mappings. It works with or without a running daemon: both open the same SQLite file, whose locking
keeps them consistent; what only the daemon knows (its endpoints, a mapping's last error) comes from
its daemon.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdad.cli.common import STATE_DIR_NAME, load, local_time, open_services, print_json, print_table, state_dir
from lambdad.errors import EXIT_OK, ManifestError

if TYPE_CHECKING:
    from lambdad.manifest import Manifest
    from lambdad.services.state import StateServices
    from lambdad.sqs_vocabulary import QueueDepth
    from lambdad.statedir import DaemonInfo


def cmd_status(args: argparse.Namespace) -> int:
    from lambdad.services.asyncinvoke import FunctionCounts
    from lambdad.sqs_vocabulary import QueueDepth

    try:
        manifest = load(args, running=False)
    except ManifestError:
        return _status_of_invalid_manifest(args)
    daemon = state_dir(args, manifest).running_daemon()
    with open_services(args, manifest) as services:
        counts = services.invocations.counts()
        depths = services.queues.depths()
        positions = _stream_positions(services, manifest)
    names = list(manifest.functions) + sorted(set(counts) - set(manifest.functions))
    functions = {name: {**vars(counts.get(name, FunctionCounts())), "in_manifest": name in manifest.functions}
                 for name in names}
    queue_rows = {q: vars(depths.get(q, QueueDepth())) for q in manifest.queues}
    report = {"daemon": _daemon_info(daemon), "functions": functions, "queues": queue_rows,
              "sqs_mappings": _sqs_mappings(manifest, depths, daemon.sqs_mappings if daemon else {}),
              "stream_mappings": positions}
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


def _sqs_mappings(manifest: Manifest, depths: dict[str, QueueDepth], errors: dict[str, Any]) -> dict[str, dict]:
    """Each SQS mapping (`FUNCTION/QUEUE`): its queue's depth (visible messages), the messages in flight
    (received, not yet deleted or visible again) and the last batch that failed, as the running daemon
    last wrote it (a mapping's errors live in the daemon, not in the store)."""
    from lambdad.manifest.model import SqsTrigger
    from lambdad.sqs_vocabulary import QueueDepth

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
    from lambdad.shown import one_line

    if not error:
        return "-"
    at = error.get("at")
    when = local_time(at) if isinstance(at, int | float) else "?"
    return one_line(f"{when}: {error.get('error')}")


def _stream_positions(services: StateServices, manifest: Manifest) -> dict[str, list[dict[str, Any]]]:
    """Each stream mapping's position and lag (records not yet done) per shard and lane."""
    from lambdad.manifest.model import StreamTrigger
    from lambdad.stream_vocabulary import number_of, shard_id
    from lambdad.triggers.mappings.streams import mapping_id

    out: dict[str, list[dict[str, Any]]] = {}
    for fn in manifest.functions.values():
        for t in fn.events:
            if not isinstance(t, StreamTrigger) or t.stream not in manifest.streams:
                continue
            key = mapping_id(fn.name, t.stream)
            stream = manifest.streams[t.stream]
            # Before any daemon ran the mapping, its lag is known only if it starts at the first record.
            lanes = services.streams.progress(key, stream, t.parallelization_factor,
                                              t.starting_position == "TRIM_HORIZON")
            out[key] = [{"shard": shard_id(p.shard), "lane": p.lane,
                         "position": None if p.position is None else number_of(stream, p.shard, p.position),
                         "lag": p.lag} for p in lanes]
    return out


def _status_of_invalid_manifest(args: argparse.Namespace) -> int:
    """The manifest on disk is invalid: say what the daemon runs (if one runs) and what is wrong."""
    from lambdad.manifest import find_manifest, load_manifest
    from lambdad.statedir import StateDir
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
        since = local_time(f.get("since", 0))
        print(f"failing: {LABELS.get(name, name)}: {f.get('error')} (since {since}, {f.get('attempts')} attempt(s); "
              "retrying, nothing accepted is lost)")


def _daemon_info(info: DaemonInfo | None) -> dict[str, Any]:
    if info is None:
        return {"running": False}
    return {"running": True, **info.to_json()}
