"""API Gateway route keys (`GET /items/{id}`, `ANY /{proxy+}`, `$default`): parsing, matching as
API Gateway matches them, and whether an ALB rule and an API route could claim the same request.

Precedence, as HTTP APIs choose "the most specific match": a route without a greedy variable before
one with it; segment by segment, a literal before a `{variable}`; a longer literal prefix before a
shorter one among greedy routes; a named method before `ANY`; `$default` last.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT = "$default"
_VARIABLE = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}\Z")


class RouteError(ValueError):
    """A route key API Gateway would refuse."""


@dataclass(frozen=True)
class Segment:
    text: str  #: the literal, or the variable's name
    variable: bool = False
    greedy: bool = False


@dataclass(frozen=True)
class RouteKey:
    key: str  #: as written: "GET /items/{id}" or "$default"
    method: str  #: a method, "ANY", or "" for $default
    path: str  #: "/items/{id}" ("" for $default)
    segments: tuple[Segment, ...]

    @property
    def is_default(self) -> bool:
        return self.key == DEFAULT

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1].greedy

    def allows(self, method: str) -> bool:
        return self.method in ("", "ANY") or self.method == method

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if the route takes the request, else None.

        `path` is the path the API routes on, compared as it is: a REST API's as sent, still
        percent-encoded (`/items/a%2Fb` is one segment, `a%2Fb`); an HTTP API's decoded first
        (`events.apigateway.http_api_path`: `/items/a%2Fb` is `/items/a/b`, two segments).
        """
        if self.is_default:
            return {}
        if not self.allows(method):
            return None
        if len(path) > 1 and path.endswith("/") and not path.endswith("//"):  # routed as /items, as API Gateway does
            path = path[:-1]
        parts = path.split("/")[1:] if path != "/" else []
        params: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.greedy:
                rest = "/".join(parts[i:])
                if not rest:
                    return None
                params[seg.text] = rest
                return params
            if i >= len(parts):
                return None
            if seg.variable:
                if not parts[i]:
                    return None
                params[seg.text] = parts[i]
            elif parts[i] != seg.text:
                return None
        return params if len(parts) == len(self.segments) else None

    def shape(self) -> tuple:
        """Routes of one shape differ only in their variables' names: API Gateway cannot tell them apart."""
        return (self.method, tuple("{+}" if s.greedy else "{}" if s.variable else s.text for s in self.segments))

    def precedence(self) -> tuple:
        """Sorts the most specific route first."""
        if self.is_default:
            return (2,)
        kinds = tuple(1 if s.variable else 0 for s in self.segments if not s.greedy)
        tier = (1, -len(kinds)) if self.greedy else (0, 0)
        return (*tier, kinds, self.method == "ANY")


def parse_route(key: str) -> RouteKey:
    """Raises RouteError with the reason API Gateway would give, in words."""
    if key == DEFAULT:
        return RouteKey(key, "", "", ())
    method, _, path = key.partition(" ")
    if method not in (*METHODS, "ANY"):
        raise RouteError(f"route {key!r}: the method must be one of {', '.join((*METHODS, 'ANY'))}, or the route "
                         f"'$default'")
    if not path.startswith("/") or " " in path:
        raise RouteError(f"route {key!r}: write it as 'METHOD /path', the path starting with /")
    segments: list[Segment] = []
    names: set[str] = set()
    raw = path[1:].split("/") if path != "/" else []
    for i, part in enumerate(raw):
        if not part:
            raise RouteError(f"route {key!r}: empty path segment")
        found = _VARIABLE.match(part)
        if found:
            name, plus = found.groups()
            if plus and i != len(raw) - 1:
                raise RouteError(f"route {key!r}: a greedy variable {{{name}+}} must be the last segment")
            if name in names:
                raise RouteError(f"route {key!r}: variable {{{name}}} appears twice")
            names.add(name)
            segments.append(Segment(name, variable=True, greedy=bool(plus)))
        elif "{" in part or "}" in part:
            raise RouteError(f"route {key!r}: {part!r} is not a segment or a {{variable}}")
        else:
            segments.append(Segment(part))
    return RouteKey(key, method, path, tuple(segments))


def best_route(routes: list[tuple[RouteKey, T]], method: str,
               path: str | Callable[[T], str | None]) -> tuple[RouteKey, T, dict[str, str]] | None:
    """The route API Gateway would pick for the request, its target and path parameters.

    `path` may depend on the target (a REST route matches the path as sent, an HTTP API route the
    decoded one); None for a target that cannot take the request at all.
    """
    def path_for(target: T) -> str | None:
        return path(target) if callable(path) else path

    found = [(route.precedence(), i, route, target, params) for i, (route, target) in enumerate(routes)
             for at in [path_for(target)] if at is not None
             for params in [route.match(method, at)] if params is not None]
    if not found:
        return None
    *_, route, target, params = min(found, key=lambda f: f[:2])
    return route, target, params


# -- overlap between ALB path patterns and API routes ----------------------------------------------------

_ANY, _NONSLASH = "any", "nonslash"  # character classes; anything else is a literal character


def _glob_nfa(glob: str) -> list[list[tuple[str | None, int]]]:
    """ALB's path pattern as an NFA: state i has (class, next) moves; None is an empty move."""
    states: list[list[tuple[str | None, int]]] = []
    for c in glob:
        i = len(states)
        if c == "*":
            states.append([(_ANY, i), (None, i + 1)])
        else:
            states.append([(_ANY if c == "?" else c, i + 1)])
    states.append([])
    return states


def _route_nfa(route: RouteKey) -> list[list[tuple[str | None, int]]]:
    states: list[list[tuple[str | None, int]]] = []
    for seg in route.segments:
        states.append([("/", len(states) + 1)])
        i = len(states)
        if seg.variable:
            cls = _ANY if seg.greedy else _NONSLASH
            states.append([(cls, i + 1)])
            states.append([(cls, i + 1), (None, i + 2)])
        else:
            for c in seg.text:
                states.append([(c, len(states) + 1)])
    if route.segments:  # one trailing slash more: the route takes it too
        states.append([("/", len(states) + 1), (None, len(states) + 1)])
    else:
        states.append([("/", 1)])
    states.append([])
    return states


def _closure(nfa: list[list[tuple[str | None, int]]], state: int) -> set[int]:
    seen, todo = {state}, [state]
    while todo:
        for cls, nxt in nfa[todo.pop()]:
            if cls is None and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _both(a: str, b: str) -> str | None:
    """A character in both classes, if there is one."""
    for x, y in ((a, b), (b, a)):
        if x not in (_ANY, _NONSLASH):
            return x if y in (x, _ANY) or (y == _NONSLASH and x != "/") else None
    return "x"


def common_path(glob: str, route: RouteKey) -> str | None:
    """A path both ALB's `glob` and `route` take (so a listener with both would be ambiguous), or None."""
    if route.is_default:
        return glob.replace("*", "").replace("?", "x")
    a, b = _glob_nfa(glob), _route_nfa(route)
    start = (0, 0)
    parents: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {start: None}
    todo = deque([start])
    while todo:
        pair = todo.popleft()
        here_a, here_b = _closure(a, pair[0]), _closure(b, pair[1])
        if len(a) - 1 in here_a and len(b) - 1 in here_b:
            out, at = [], pair
            while parents[at] is not None:
                at, c = parents[at]  # type: ignore[misc]
                out.append(c)
            return "".join(reversed(out))
        for sa in here_a:
            for cls_a, na in a[sa]:
                if cls_a is None:
                    continue
                for sb in here_b:
                    for cls_b, nb in b[sb]:
                        c = None if cls_b is None else _both(cls_a, cls_b)
                        if c is not None and (na, nb) not in parents:
                            parents[(na, nb)] = (pair, c)
                            todo.append((na, nb))
    return None
