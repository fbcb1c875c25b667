"""The manifest's rules that come from API Gateway and ALB: routes and path patterns AWS would
refuse, listeners where two triggers could claim one request, and the addresses listened on."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from lambdad.manifest import model as m
from lambdad.manifest.checks import Check, Finding
from lambdad.payloads.media_types import pattern_problem
from lambdad.route_keys import RouteError, common_path, parse_route
from lambdad.shown import shown


def check_alb_priorities(man: m.Manifest) -> Iterator[Finding]:
    priorities: dict[tuple[str, int], str] = {}
    for fn in man.functions.values():
        for trigger in fn.events:
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


CHECKS: tuple[Check, ...] = (
    check_alb_priorities,
    check_listeners,
    check_http_paths,
    check_binary_media_types,
    check_ports,
    check_hosts,
)
