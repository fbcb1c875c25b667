"""Turn schema-valid manifest data into the frozen model: merge defaults, parse durations, resolve paths.

Problems found on the way (a duration out of range, an interpreter that does not exist) are
collected, not raised, so that one run reports all of them.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lambdad.durations import parse_duration
from lambdad.manifest import model as m
from lambdad.manifest.problems import DocPath, Marks, Problem
from lambdad.shown import shown

#: lambdad accepts event ages from 1 s so that tests can expire events quickly (AWS: 60 s).
MIN_EVENT_AGE_S = 1.0
MAX_EVENT_AGE_S = 6 * 3600.0
#: An idle environment lives at most this long (every duration has an upper bound: a timer cannot wait 1e300 s).
MAX_KEEP_ALIVE_S = 7 * 86400.0


def _not_json(value: Any, where: DocPath) -> tuple[DocPath, Any] | None:
    """The first value in `value` that JSON cannot carry, and where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _not_json(item, (*where, key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _not_json(item, (*where, i))
            if found:
                return found
    elif (isinstance(value, float) and not math.isfinite(value)) or not isinstance(value, str | int | float | None):
        return where, value
    return None


def url_listener(function: str) -> str:
    """The name of a function URL's own listener ("." keeps it apart from the manifest's listener names)."""
    return f"{function}.url"

class Builder:
    def __init__(self, data: Mapping[str, Any], marks: Marks, file: Path) -> None:
        self.data = data
        self.marks = marks
        self.file = file
        self.folder = file.parent
        self.problems: list[Problem] = []

    def problem(self, where: DocPath, message: str) -> None:
        self.problems.append(Problem(str(self.file), self.marks.value(where), where, message))

    # -- values ---------------------------------------------------------------------------------------

    def duration(self, value: Any, where: DocPath, lo: float = 0.0, hi: float | None = None) -> float | None:
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.problem(where, str(e))
            return None
        if seconds < lo or (hi is not None and seconds > hi):
            bounds = f"between {lo:g}s and {hi:g}s" if hi is not None else f"at least {lo:g}s"
            self.problem(where, f"{shown(value)} is out of range: must be {bounds}")
            return None
        return seconds

    def json_input(self, value: Any, where: DocPath) -> None:
        """A schedule's input becomes the event's JSON: YAML's dates, bytes, NaN and infinities have none."""
        found = _not_json(value, where)
        if found is not None:
            at, bad = found
            hint = " (quote it to pass it as a string)" if isinstance(bad, date) else ""
            self.problem(at, f"{shown(bad)} has no JSON form{hint}")

    def path(self, value: str) -> Path:
        return Path(os.path.normpath(self.folder / Path(value).expanduser()))

    def python(self, value: str | None, where: DocPath) -> str:
        if value is None:
            return sys.executable
        found = str(self.path(value)) if os.sep in value else shutil.which(value)
        if not found or not (os.path.isfile(found) and os.access(found, os.X_OK)):
            self.problem(where, f"python interpreter {value!r} not found or not executable")
            return value
        return found

    @staticmethod
    def environment(*layers: Mapping[str, Any] | None) -> dict[str, str]:
        env: dict[str, str] = {}
        for layer in layers:
            for key, value in (layer or {}).items():
                env[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return env

    # -- sections -------------------------------------------------------------------------------------

    def build(self) -> m.Manifest:
        d = self.data
        api = d.get("api", {})
        defaults = d.get("defaults", {})
        return m.Manifest(
            file=self.file,
            region=d.get("region", m.DEFAULT_REGION),
            account=d.get("account", m.DEFAULT_ACCOUNT),
            concurrency=d.get("concurrency", m.DEFAULT_CONCURRENCY),
            durability=d.get("durability", "normal"),
            api=self.api(api),
            buckets={name: self.bucket(name, b) for name, b in d.get("buckets", {}).items()},
            queues={name: self.queue(name, q) for name, q in d.get("queues", {}).items()},
            listeners={**{name: self.listener(name, li) for name, li in d.get("listeners", {}).items()},
                       **self.url_listeners(d.get("functions", {}))},
            streams={name: self.stream(name, st) for name, st in d.get("streams", {}).items()},
            functions={name: self.function(name, f, defaults) for name, f in d.get("functions", {}).items()},
        )

    def api(self, api: Mapping[str, Any]) -> m.ApiEndpoint:
        limits, default = api.get("limits", {}), m.HttpLimits()

        def dur(key: str, fallback: float) -> float:
            if key not in limits:
                return fallback
            return self.duration(limits[key], ("api", "limits", key), 0.05, 3600.0) or fallback

        return m.ApiEndpoint(
            api.get("host", m.DEFAULT_API_HOST), api.get("port", m.DEFAULT_API_PORT),
            allow_origins=tuple(o.lower().rstrip("/") for o in api.get("allow_origins", ())),
            limits=m.HttpLimits(
                header_bytes=limits.get("header_bytes", default.header_bytes),
                header_timeout_s=dur("header_timeout", default.header_timeout_s),
                keep_alive_s=dur("keep_alive", default.keep_alive_s),
            ),
        )

    def bucket(self, name: str, b: Mapping[str, Any]) -> m.Bucket:
        return m.Bucket(
            name=name,
            path=self.path(b["path"]),
            versioning=b.get("versioning", False),
            ignore=tuple(b.get("ignore", ())),
            where=("buckets", name),
        )

    def queue(self, name: str, q: Mapping[str, Any]) -> m.Queue:
        where: DocPath = ("queues", name)
        redrive = q.get("redrive") or {}

        def dur(key: str, default: float, hi: float) -> float:
            seconds = self.duration(q[key], (*where, key), 0.0, hi) if key in q else None
            return default if seconds is None else seconds  # 0 is a valid setting, not "unset"

        return m.Queue(
            name=name,
            fifo=q.get("fifo", name.endswith(".fifo")),
            visibility_timeout_s=dur("visibility_timeout", 30.0, 12 * 3600.0),
            message_retention_s=dur("message_retention", 4 * 86400.0, 14 * 86400.0),
            delay_s=dur("delay", 0.0, 900.0),
            content_based_deduplication=q.get("content_based_deduplication", False),
            redrive_dead_letter_queue=redrive.get("dead_letter_queue"),
            redrive_max_receive_count=redrive.get("max_receive_count"),
            where=where,
        )

    def stream(self, name: str, st: Mapping[str, Any]) -> m.Stream:
        where: DocPath = ("streams", name)
        if "view_type" in st and st.get("format", "kinesis") != "dynamodb":
            self.problem((*where, "view_type"), "view_type is for dynamodb streams (format: dynamodb)")
        retention = self.duration(st["retention"], (*where, "retention"), 60.0, 365 * 86400.0) \
            if "retention" in st else None
        return m.Stream(name=name, shards=st.get("shards", 1), retention_s=retention or 86400.0,
                        format=st.get("format", "kinesis"), view_type=st.get("view_type", "NEW_AND_OLD_IMAGES"),
                        where=where)

    def listener(self, name: str, li: Mapping[str, Any]) -> m.Listener:
        endpoint = m.Endpoint(li.get("host", m.DEFAULT_API_HOST), li.get("port", 0))
        return m.Listener(name=name, endpoint=endpoint, where=("listeners", name))

    def url_listeners(self, functions: Mapping[str, Any]) -> dict[str, m.Listener]:
        """A function URL without a listener gets one of its own, on its own port."""
        out = {}
        for name, f in functions.items():
            for i, item in enumerate(f.get("events") or ()):
                spec = item.get("url") if isinstance(item, dict) else None
                if isinstance(spec, dict) and not spec.get("listener"):
                    endpoint = m.Endpoint(spec.get("host", m.DEFAULT_API_HOST), spec.get("port", 0))
                    out[url_listener(name)] = m.Listener(url_listener(name), endpoint, url_of=name,
                                                         where=("functions", name, "events", i, "url"))
        return out

    @staticmethod
    def name_of(where: DocPath) -> str:
        return str(where[1])

    def function(self, name: str, f: Mapping[str, Any], defaults: Mapping[str, Any]) -> m.Function:
        where: DocPath = ("functions", name)

        def pick(key: str) -> tuple[Any, DocPath]:
            if key in f:
                return f[key], (*where, key)
            return defaults.get(key), ("defaults", key)

        timeout, timeout_at = pick("timeout")
        keep_alive, keep_alive_at = pick("keep_alive")
        python, python_at = pick("python")
        return m.Function(
            name=name,
            handler=f["handler"],
            code=self.path(f.get("code", ".")),
            python=self.python(python, python_at),
            timeout_s=self.timeout(timeout, timeout_at),
            memory_mb=pick("memory")[0] or m.DEFAULT_MEMORY_MB,
            reserved_concurrency=f.get("reserved_concurrency"),
            recursive_loop=m.RecursiveLoop(f.get("recursive_loop", m.RecursiveLoop.terminate)),
            keep_alive_s=(
                m.DEFAULT_KEEP_ALIVE_S
                if keep_alive is None
                else self.duration(keep_alive, keep_alive_at, 1.0, MAX_KEEP_ALIVE_S) or m.DEFAULT_KEEP_ALIVE_S
            ),
            environment=self.environment(defaults.get("environment"), f.get("environment")),
            async_config=self.async_config(defaults.get("async") or {}, f.get("async") or {}, where),
            events=tuple(self.trigger(e, (*where, "events", i)) for i, e in enumerate(f.get("events", ()))),
            description=f.get("description", ""),
            where=where,
        )

    def timeout(self, value: Any, where: DocPath) -> int:
        if value is None:
            return m.DEFAULT_TIMEOUT_S
        seconds = self.duration(value, where, 1.0, 900.0)
        if seconds is None:
            return m.DEFAULT_TIMEOUT_S
        if seconds != int(seconds):
            self.problem(where, f"{value!r} is not a whole number of seconds (Lambda timeouts are)")
        return int(seconds)

    def async_config(self, defaults: Mapping[str, Any], own: Mapping[str, Any], fn_where: DocPath) -> m.AsyncConfig:
        merged = {**defaults, **own}

        def at(key: str) -> DocPath:
            return (*fn_where, "async", key) if key in own else ("defaults", "async", key)

        age = merged.get("maximum_event_age")
        backoff = merged.get("backoff")
        return m.AsyncConfig(
            maximum_retry_attempts=merged.get("maximum_retry_attempts", m.DEFAULT_MAX_RETRY_ATTEMPTS),
            maximum_event_age_s=(
                m.DEFAULT_MAX_EVENT_AGE_S
                if age is None
                else self.duration(age, at("maximum_event_age"), MIN_EVENT_AGE_S, MAX_EVENT_AGE_S)
                or m.DEFAULT_MAX_EVENT_AGE_S
            ),
            backoff_s=(
                m.DEFAULT_BACKOFF_S
                if backoff is None
                else tuple(self.duration(b, (*at("backoff"), i), 0.0, MAX_EVENT_AGE_S) or 0.0
                           for i, b in enumerate(backoff))
            ),
            dead_letter=self.target(merged.get("dead_letter"), at("dead_letter")),
            on_success=self.target(merged.get("on_success"), at("on_success")),
            on_failure=self.target(merged.get("on_failure"), at("on_failure")),
        )

    def target(self, t: Mapping[str, str] | None, where: DocPath) -> m.Target | None:
        if not t:
            return None
        ((kind, name),) = t.items()
        resolved = str(self.path(name)) if kind == m.TargetKind.folder else name
        return m.Target(m.TargetKind(kind), resolved, where=(*where, kind))

    def trigger(self, item: Mapping[str, Any], where: DocPath) -> m.Trigger:
        ((kind, spec),) = item.items()
        where = (*where, kind)
        if kind == "s3":
            flt = spec.get("filter") or {}
            return m.S3Trigger(
                bucket=spec["bucket"],
                events=tuple(spec.get("events", m.DEFAULT_S3_EVENTS)),
                prefix=flt.get("prefix", ""),
                suffix=flt.get("suffix", ""),
                id=spec.get("id", ""),
                where=where,
            )
        if kind == "schedule":
            self.json_input(spec.get("input"), (*where, "input"))
            return m.ScheduleTrigger(
                name=spec["name"],
                expression=spec["expression"],
                timezone=spec.get("timezone", "UTC"),
                input=spec.get("input"),
                enabled=spec.get("enabled", True),
                description=spec.get("description", ""),
                where=where,
            )
        if kind in ("kinesis", "dynamodb"):
            return self.stream_trigger(kind, spec, where)
        if kind == "sqs":
            window = self.duration(spec.get("maximum_batching_window", 0), (*where, "maximum_batching_window"),
                                   hi=300.0)
            return m.SqsTrigger(
                queue=spec["queue"],
                batch_size=spec.get("batch_size", 10),
                maximum_batching_window_s=window or 0.0,
                report_batch_item_failures=spec.get("report_batch_item_failures", False),
                maximum_concurrency=spec.get("maximum_concurrency"),
                enabled=spec.get("enabled", True),
                where=where,
            )
        if kind == "api":
            timeout = self.duration(spec.get("timeout", 29), (*where, "timeout"), 0.05, 900.0)
            fmt = spec.get("payload_format", "2.0")  # YAML reads an unquoted 2.0 (or 2) as a number
            if spec.get("api_type") == "rest" and str(fmt) in ("2.0", "2"):
                self.problem((*where, "api_type"), "a REST API sends payload format 1.0 only: set payload_format: "
                             "'1.0', or use api_type: http")
            return m.ApiTrigger(listener=spec["listener"], route=spec.get("route", "$default"),
                                payload_format=fmt if isinstance(fmt, str) else f"{float(fmt):.1f}",
                                timeout_s=timeout or 29.0, binary_media_types=tuple(spec.get("binary_media_types", ())),
                                api_type=spec.get("api_type", ""), where=where)
        if kind == "url":
            if spec.get("listener") and ("port" in spec or "host" in spec):
                self.problem((*where, "listener"), "a URL on a listener uses the listener's address: give "
                                                   "listener, or host and port, not both")
            return m.ApiTrigger(listener=spec.get("listener") or url_listener(self.name_of(where)),
                                function_url=True, timeout_s=900.0, where=where)
        return m.AlbTrigger(
            listener=spec["listener"],
            path=spec.get("path", "/*"),
            methods=tuple(spec.get("methods", ())),
            host=spec.get("host"),
            priority=spec.get("priority"),
            multi_value_headers=spec.get("multi_value_headers", False),
            where=where,
        )

    def stream_trigger(self, kind: str, spec: Mapping[str, Any], where: DocPath) -> m.StreamTrigger:
        age = spec.get("maximum_record_age", -1)
        age_s = -1.0 if age == -1 else self.duration(age, (*where, "maximum_record_age"), 60.0, 7 * 86400.0)
        stamp = None
        if "starting_position_timestamp" in spec:
            try:
                when = datetime.fromisoformat(spec["starting_position_timestamp"])
                stamp = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()  # naive: UTC
            except ValueError:
                self.problem((*where, "starting_position_timestamp"),
                             f"{spec['starting_position_timestamp']!r} is not an ISO 8601 time")
        window = self.duration(spec.get("maximum_batching_window", 0), (*where, "maximum_batching_window"), hi=300.0)
        return m.StreamTrigger(
            kind=kind,
            stream=spec["stream"],
            batch_size=spec.get("batch_size", 100),
            starting_position=spec.get("starting_position", "TRIM_HORIZON"),
            starting_position_timestamp=stamp,
            maximum_batching_window_s=window or 0.0,
            maximum_retry_attempts=spec.get("maximum_retry_attempts", -1),
            maximum_record_age_s=-1.0 if age_s is None else age_s,
            bisect_batch_on_function_error=spec.get("bisect_batch_on_function_error", False),
            report_batch_item_failures=spec.get("report_batch_item_failures", False),
            parallelization_factor=spec.get("parallelization_factor", 1),
            on_failure=self.target(spec.get("on_failure"), (*where, "on_failure")),
            enabled=spec.get("enabled", True),
            where=where,
        )
