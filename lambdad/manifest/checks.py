"""Second validation layer: rules that span fields, which a JSON Schema cannot express.

Each `check_*` is a small generator of `Finding`s over the built model; `run_checks` runs them all.
Names follow AWS's own rules (function names, S3 bucket names, SQS queue names).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdad.events.media_types import pattern_problem
from lambdad.http.routes import RouteError, common_path, parse_route
from lambdad.manifest import model as m
from lambdad.manifest.problems import DocPath, did_you_mean
from lambdad.shown import shown


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

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LISTENER_NAME = _FUNCTION_NAME
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

#: Environment variables the Lambda runtime sets itself; a function cannot override them.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
#: Lambda's limit on the total size of a function's environment variables.
MAX_ENV_BYTES = 4096


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


def handler_module_file(code: Path, handler: str) -> Path | None:
    """The file that `import` would load for the handler's module, or None if there is none."""
    module = handler.rsplit(".", 1)[0].replace("/", ".")
    base = code.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    if base.parent.is_dir():  # compiled modules: name.cpython-311-x86_64-linux-gnu.so, name.pyc
        for found in base.parent.glob(base.name + ".*"):
            if found.suffix in (".so", ".pyd", ".pyc"):
                return found
    return None


def check_code(man: m.Manifest) -> Iterator[Finding]:
    for fn in man.functions.values():
        if not fn.code.is_dir():
            yield Finding((*fn.where, "code"), f"code folder {str(fn.code)!r} does not exist")
        elif handler_module_file(fn.code, fn.handler) is None:
            module = fn.handler.rsplit(".", 1)[0]
            yield Finding(
                (*fn.where, "handler"),
                f"module {module!r} not found in {str(fn.code)!r} (looked for {module.replace('.', '/')}.py)",
            )


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


def check_unique(man: m.Manifest) -> Iterator[Finding]:
    rules: dict[str, str] = {}
    priorities: dict[tuple[str, int], str] = {}
    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.ScheduleTrigger):
                if trigger.name in rules:
                    yield Finding((*trigger.where, "name"), f"schedule name {trigger.name!r} is already used by "
                                                            f"function {rules[trigger.name]!r}")
                rules.setdefault(trigger.name, fn.name)
            if isinstance(trigger, m.AlbTrigger) and trigger.priority is not None:
                key = (trigger.listener, trigger.priority)
                if key in priorities:
                    yield Finding((*trigger.where, "priority"), f"priority {trigger.priority} on listener "
                                  f"{trigger.listener!r} is already used by function {priorities[key]!r}")
                priorities.setdefault(key, fn.name)


def check_listeners(man: m.Manifest) -> Iterator[Finding]:
    """Routes API Gateway would refuse, and listeners where two kinds of trigger could claim a request."""
    by_listener: dict[str, list[tuple[str, m.Trigger]]] = {}
    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.AlbTrigger | m.ApiTrigger):
                by_listener.setdefault(trigger.listener, []).append((fn.name, trigger))
    for listener, served in by_listener.items():
        urls = [(f, t) for f, t in served if isinstance(t, m.ApiTrigger) and t.function_url]
        if urls and len(served) > 1:
            fn, url = urls[0]
            other = next(f for f, t in served if t is not url)
            yield Finding((*url.where, "listener"), f"listener {listener!r} serves the URL of function {fn!r} (every "
                                                    f"path and method): it cannot also serve function {other!r}")
            continue
        routes: dict[str, str] = {}
        shapes: dict[tuple, tuple[str, str]] = {}
        parsed = []
        for fn, t in served:
            if not isinstance(t, m.ApiTrigger) or t.function_url:
                continue
            try:
                route = parse_route(t.route)
            except RouteError as e:
                yield Finding((*t.where, "route"), str(e))
                continue
            if t.route in routes:
                yield Finding((*t.where, "route"), f"route {t.route!r} on listener {listener!r} is already used by "
                                                   f"function {routes[t.route]!r}")
                continue
            routes[t.route] = fn
            if route.shape() in shapes and not route.is_default:
                other_fn, other = shapes[route.shape()]
                yield Finding((*t.where, "route"), f"route {t.route!r} conflicts with route {other!r} (function "
                                                   f"{other_fn!r}): they differ only in the variables' names")
                continue
            shapes[route.shape()] = (fn, t.route)
            parsed.append((fn, t, route))
        for fn, t, route in parsed:
            for alb_fn, alb in ((f, a) for f, a in served if isinstance(a, m.AlbTrigger)):
                methods = set(alb.methods) if alb.methods else None
                if methods is not None and route.method not in ("", "ANY") and route.method not in methods:
                    continue
                path = common_path(alb.path, route)
                if path is not None:
                    method = route.method if route.method not in ("", "ANY") else sorted(methods or {"GET"})[0]
                    yield Finding((*t.where, "route"), f"route {t.route!r} (function {fn!r}) and the ALB rule "
                                  f"{alb.path!r} (function {alb_fn!r}) on listener {listener!r} can both take "
                                  f"{method} {path}: put them on separate listeners, or use paths that cannot meet")


#: What ALB allows in a path pattern (ALB guide, "Condition types for listener rules"). Every other
#: character reaches ALB percent-encoded, and ALB (as a listener) matches the path as sent.
_ALB_PATH = re.compile(r"""[A-Za-z0-9_\-.$/~"'@:+&*?]*""")
_ALB_PATH_CHARS = "A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?"
#: What API Gateway allows in a REST API resource's path part (CreateResource: "a-zA-Z0-9._-", and `:`).
_REST_PART = re.compile(r"[A-Za-z0-9._:-]+")


def _first_not(allowed: re.Pattern[str], text: str) -> str | None:
    """The first character of `text` that `allowed` (a pattern of allowed runs) does not take."""
    found = allowed.match(text)
    end = found.end() if found else 0
    return text[end] if end < len(text) else None


def check_http_paths(man: m.Manifest) -> Iterator[Finding]:
    """ALB path patterns and REST API (payload 1.0) route literals match the path as sent, still
    percent-encoded: a character that is always sent encoded (`é`, a space) would make a rule or a route
    that validates and never matches, so it is refused here, as AWS refuses it."""
    for fn in man.functions.values():
        for t in fn.events:
            if isinstance(t, m.AlbTrigger):
                bad = _first_not(_ALB_PATH, t.path)
                if bad is not None:
                    yield Finding((*t.where, "path"), f"path pattern {shown(t.path)}: {bad!r} is not allowed (ALB "
                                  f"allows {_ALB_PATH_CHARS}; a request's path carries others percent-encoded)")
            elif isinstance(t, m.ApiTrigger) and t.rest:
                try:
                    route = parse_route(t.route)
                except RouteError:  # (check_listeners says why)
                    continue
                for seg in route.segments:
                    bad = None if seg.variable else _first_not(_REST_PART, seg.text)
                    if bad is not None:
                        yield Finding((*t.where, "route"), f"route {shown(t.route)}: {bad!r} is not allowed in a REST "
                                      "API (payload 1.0) path part (letters, digits, . _ - : and {variables})")
                        break


def check_binary_media_types(man: m.Manifest) -> Iterator[Finding]:
    """binaryMediaTypes belong to REST APIs (payload 1.0): HTTP APIs and function URLs decide by themselves."""
    for fn in man.functions.values():
        for t in fn.events:
            if not isinstance(t, m.ApiTrigger) or not t.binary_media_types:
                continue
            if not t.rest:
                yield Finding((*t.where, "binary_media_types"), "binary_media_types is a REST API setting: it needs "
                              "payload_format 1.0 and no api_type: http (HTTP APIs base64-encode every body that is "
                              "not text by themselves)")
            for i, pattern in enumerate(t.binary_media_types):
                problem = pattern_problem(pattern)
                if problem:
                    yield Finding((*t.where, "binary_media_types", i), problem)


def check_ports(man: m.Manifest) -> Iterator[Finding]:
    taken: dict[tuple[str, int], str] = {}
    endpoints = [(("api",), "the api", man.api)]
    endpoints += [(li.where, f"listener {li.name!r}", li.endpoint) for li in man.listeners.values()]
    for where, label, ep in endpoints:
        if ep.port == 0:
            continue
        key = (ep.host, ep.port)
        if key in taken:
            yield Finding((*where, "port"), f"{ep.host}:{ep.port} is already used by {taken[key]}")
        taken.setdefault(key, label)


_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def host_error(host: str) -> str | None:
    """Why `host` cannot be listened on, or None: an IP address, or a name of 1-63 character labels
    (the resolver refuses anything else with an encoding error rather than a lookup failure)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.removesuffix(".").split(".")):
        return "is not an IP address or a host name (labels of 1 to 63 letters, digits, - or _)"
    return None


def check_hosts(man: m.Manifest) -> Iterator[Finding]:
    endpoints = [(("api",), man.api)] + [(li.where, li.endpoint) for li in man.listeners.values()]
    for where, ep in endpoints:
        why = host_error(ep.host)
        if why:
            yield Finding((*where, "host"), f"{shown(ep.host)} {why}")


def check_environment(man: m.Manifest) -> Iterator[Finding]:
    for fn in man.functions.values():
        where = (*fn.where, "environment")
        for key in fn.environment:
            if key in RESERVED_ENV:
                yield Finding((*where, key), f"{key} is reserved by the Lambda runtime and cannot be set", True)
        size = sum(len(k.encode()) + len(v.encode()) for k, v in fn.environment.items())
        if size > MAX_ENV_BYTES:
            yield Finding(where, f"environment variables take {size} bytes; Lambda allows {MAX_ENV_BYTES}")


def check_s3_overlaps(man: m.Manifest) -> Iterator[Finding]:
    """S3 refuses two notification configurations on a bucket that could both fire for one event."""
    from lambdad.buckets.rules import overlap

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


#: The longest rate lambdad schedules: EventBridge documents no limit, but its calendar ends in 2199
#: (cron's years), and a period much longer overflows date arithmetic (rate(10^400 minutes) would).
MAX_RATE_DAYS = 36500


def check_schedules(man: m.Manifest) -> Iterator[Finding]:
    """Expressions EventBridge would refuse are refused here, with the reason."""
    from lambdad.schedules.expressions import describe_problem, parse_schedule

    for fn in man.functions.values():
        for trigger in fn.events:
            if isinstance(trigger, m.ScheduleTrigger):
                problem = describe_problem(trigger.expression, trigger.timezone)
                if problem:
                    field = "timezone" if problem.startswith("unknown time zone") else "expression"
                    yield Finding((*trigger.where, field), problem)
                elif parse_schedule(trigger.expression, trigger.timezone).every_s > MAX_RATE_DAYS * 86400:
                    yield Finding((*trigger.where, "expression"), f"{shown(trigger.expression)}: a rate is at most "
                                                                  f"{MAX_RATE_DAYS} days (100 years) here")


def check_concurrency(man: m.Manifest) -> Iterator[Finding]:
    """Reserved concurrency comes out of the shared pool (as from AWS's account limit); leave some."""
    reserved = [fn for fn in man.functions.values() if fn.reserved_concurrency]
    unreserved = [fn for fn in man.functions.values() if fn.reserved_concurrency is None]
    total = sum(fn.reserved_concurrency or 0 for fn in reserved)
    if unreserved and reserved and man.concurrency - total < 1:
        where = (*reserved[-1].where, "reserved_concurrency")
        yield Finding(where, f"reserved_concurrency adds up to {total} of concurrency {man.concurrency}: leave at "
                             f"least 1 for the {len(unreserved)} function(s) without a reservation")


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


CHECKS: tuple[Check, ...] = (
    check_names,
    check_code,
    check_references,
    check_buckets_do_not_nest,
    check_unique,
    check_listeners,
    check_http_paths,
    check_binary_media_types,
    check_ports,
    check_hosts,
    check_environment,
    check_concurrency,
    check_s3_overlaps,
    check_schedules,
    check_sqs_mappings,
)
#: Findings that do not make the manifest invalid: printed as warnings.
WARNINGS: tuple[Check, ...] = (sqs_warnings,)


def run_checks(man: m.Manifest, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    return [finding for check in checks for finding in check(man)]
