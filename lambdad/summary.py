"""The start-up summary: every function with its settings and triggers, one line each."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from lambdad import __version__
from lambdad.durations import format_duration
from lambdad.manifest.model import (
    ApiTrigger,
    Function,
    Manifest,
    S3Trigger,
    ScheduleTrigger,
    SqsTrigger,
    StreamTrigger,
    Trigger,
)


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def describe_function(fn: Function, manifest: Manifest) -> str:
    if fn.python == sys.executable:
        python = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    else:
        python = _rel(Path(fn.python))
    if fn.reserved_concurrency is None:
        reserved = sum(f.reserved_concurrency or 0 for f in manifest.functions.values())
        concurrency = f"concurrency {manifest.concurrency - reserved} (shared)"
    else:
        concurrency = f"concurrency {fn.reserved_concurrency}"
    return (
        f"  function {fn.name:<16} {python}  timeout {format_duration(fn.timeout_s)}  memory {fn.memory_mb}MB  "
        f"{concurrency}"
    )


def describe_trigger(trigger: Trigger, addresses: Mapping[str, str] | None = None) -> str:
    if isinstance(trigger, S3Trigger):
        parts = [f"s3       {trigger.bucket}", " ".join(e.removeprefix("s3:") for e in trigger.events)]
        if trigger.prefix:
            parts.append(f"prefix {trigger.prefix}")
        if trigger.suffix:
            parts.append(f"suffix {trigger.suffix}")
    elif isinstance(trigger, ScheduleTrigger):
        parts = [f"schedule {trigger.name}", trigger.expression]
        if trigger.timezone != "UTC":
            parts.append(trigger.timezone)
        if not trigger.enabled:
            parts.append("(disabled)")
    elif isinstance(trigger, StreamTrigger):
        parts = [f"{trigger.kind:<8} {trigger.stream}", f"batch {trigger.batch_size}", trigger.starting_position]
        if trigger.parallelization_factor > 1:
            parts.append(f"parallelization {trigger.parallelization_factor}")
        if trigger.bisect_batch_on_function_error:
            parts.append("(bisect on error)")
        if not trigger.enabled:
            parts.append("(disabled)")
    elif isinstance(trigger, SqsTrigger):
        parts = [f"sqs      {trigger.queue}", f"batch {trigger.batch_size}"]
        if trigger.maximum_batching_window_s:
            parts.append(f"window {format_duration(trigger.maximum_batching_window_s)}")
        if trigger.report_batch_item_failures:
            parts.append("(partial batch responses)")
        if not trigger.enabled:
            parts.append("(disabled)")
    elif isinstance(trigger, ApiTrigger):
        base = (addresses or {}).get(f"listener:{trigger.listener}", "")
        if trigger.function_url:
            parts = ["url     ", (base or trigger.listener) + "/"]
        else:
            method, _, path = trigger.route.partition(" ")
            where = f"{method} {base}{path}" if path else f"$default: any other request to {base}/"
            parts = [f"api      {trigger.listener}", where, f"payload {trigger.payload_format}"
                     + (" (HTTP API)" if trigger.payload_format == "1.0" and not trigger.rest else "")]
            if trigger.timeout_s != 29.0:
                parts.append(f"timeout {format_duration(trigger.timeout_s)}")
            if trigger.binary_media_types:
                parts.append(f"binary {','.join(trigger.binary_media_types)}")
    else:
        base = (addresses or {}).get(f"listener:{trigger.listener}", "")
        parts = [f"alb      {trigger.listener}", base + trigger.path]
        if trigger.methods:
            parts.append(",".join(trigger.methods))
        if trigger.host:
            parts.append(f"host {trigger.host}")
        if trigger.priority is not None:
            parts.append(f"priority {trigger.priority}")
        if trigger.multi_value_headers:
            parts.append("(multi-value headers)")
    return "    " + "  ".join(parts)


def describe_manifest(manifest: Manifest, state: Path, addresses: Mapping[str, str] | None = None) -> str:
    """`addresses`: where the API and each listener (`listener:NAME`) actually listen."""
    api = (addresses or {}).get("api", str(manifest.api))
    lines = [f"lambdad {__version__}  manifest {_rel(manifest.file)}  state {_rel(state)}  api {api}"]
    for fn in manifest.functions.values():
        lines.append(describe_function(fn, manifest))
        lines += [describe_trigger(t, addresses) for t in fn.events]
    return "\n".join(lines)
