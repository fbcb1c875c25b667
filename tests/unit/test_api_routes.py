"""API Gateway route keys: parsing, matching, precedence, and overlap with ALB path patterns; and
the manifest checks built on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdad.manifest import parse_manifest
from lambdad.manifest.model import ApiTrigger
from lambdad.route_keys import RouteError, best_route, common_path, parse_route


@pytest.mark.parametrize(("key", "error"), [
    ("FETCH /x", "the method must be one of"),
    ("GET items", "the path starting with /"),
    ("GET /a//b", "empty path segment"),
    ("GET /{p+}/x", "must be the last segment"),
    ("GET /{id}/{id}", "appears twice"),
    ("GET /a{id}", "is not a segment or a {variable}"),
    ("default", "the method must be one of"),
])
def test_route_keys_api_gateway_refuses(key: str, error: str):
    with pytest.raises(RouteError, match=error):
        parse_route(key)


@pytest.mark.parametrize(("key", "method", "path", "params"), [
    ("GET /items/{id}", "GET", "/items/7", {"id": "7"}),
    ("GET /items/{id}", "POST", "/items/7", None),
    ("GET /items/{id}", "GET", "/items/7/x", None),
    ("GET /items/{id}", "GET", "/items/", None),  # a variable is never empty
    # the path is compared as given: a REST API gives it as sent, an HTTP API decoded (http_api_path)
    ("GET /items/{id}", "GET", "/items/a%20b", {"id": "a%20b"}),
    ("GET /items/{id}", "GET", "/items/a%2Fb", {"id": "a%2Fb"}),  # one segment, as sent
    ("GET /items/{id}", "GET", "/items/a/b", None),  # what an HTTP API makes of /items/a%2Fb
    ("ANY /{proxy+}", "GET", "/capture/space%20value", {"proxy": "capture/space%20value"}),  # captured (REST)
    ("GET /a-b/{id}", "GET", "/a%2Db/1", None),  # a literal segment sent encoded is another segment
    ("ANY /items/{id}", "PATCH", "/items/7", {"id": "7"}),
    ("ANY /{proxy+}", "GET", "/a/b/c", {"proxy": "a/b/c"}),
    ("ANY /{proxy+}", "GET", "/", None),  # greedy takes one character at least
    ("GET /", "GET", "/", {}),
    ("GET /", "GET", "/x", None),
    ("GET /items", "GET", "/items/", {}),  # one trailing slash is ignored, as API Gateway does
    ("GET /items/{id}", "GET", "/items/7/", {"id": "7"}),
    ("GET /items/{id}", "GET", "/items//", None),
    ("GET /", "GET", "//", None),
    ("$default", "OPTIONS", "/any/thing", {}),
])
def test_matching(key: str, method: str, path: str, params):
    assert parse_route(key).match(method, path) == params


ROUTES = ["$default", "ANY /{proxy+}", "GET /items/{id}", "ANY /items/{id}", "GET /items/new",
          "GET /items/{id}/{rest+}", "GET /items/{id}/tags", "GET /{a}/{b}"]


@pytest.mark.parametrize(("method", "path", "chosen"), [
    ("GET", "/items/new", "GET /items/new"),  # a literal segment before a variable
    ("GET", "/items/7", "GET /items/{id}"),  # before {a}/{b}: literal first segment; before ANY
    ("PUT", "/items/7", "ANY /items/{id}"),
    ("GET", "/items/7/tags", "GET /items/{id}/tags"),  # exact before greedy
    ("GET", "/items/7/x/y", "GET /items/{id}/{rest+}"),  # a longer greedy prefix first
    ("GET", "/x/y", "GET /{a}/{b}"),  # no greedy before greedy
    ("GET", "/x/y/z", "ANY /{proxy+}"),
    ("GET", "/", "$default"),
])
def test_the_most_specific_route_wins(method: str, path: str, chosen: str):
    routes = [(parse_route(k), k) for k in reversed(ROUTES)]  # order in the manifest does not matter
    found = best_route(routes, method, path)
    assert found is not None and found[1] == chosen


@pytest.mark.parametrize(("glob", "key", "overlap"), [
    ("/items/*", "GET /items/{id}", True),
    ("/items/*", "GET /orders/{id}", False),
    ("/item?", "GET /items/{id}", False),
    ("/a/*/c", "ANY /a/{proxy+}", True),
    ("/a/b", "GET /a/{x}", True),
    ("/a/b/c", "GET /a/{x}", False),  # a variable does not cross a /
    ("/a/b/c", "GET /a/{x+}", True),
    ("/", "GET /", True),
    ("/a/", "GET /a", True),  # the route takes /a/ too
    ("/a/b/", "GET /a/{x}", True),
    ("/*", "$default", True),
])
def test_alb_patterns_and_routes_overlap(glob: str, key: str, overlap: bool):
    path = common_path(glob, parse_route(key))
    assert (path is not None) == overlap
    if path is not None and key != "$default":  # the example really is taken by both
        from lambdad.http.routing import pattern

        assert pattern(glob).match(path) and parse_route(key).match(key.split()[0].replace("ANY", "GET"), path) \
            is not None


BASE = """version: 1
listeners:
  web: {port: 0}
  edge: {port: 0}
functions:
  f:
    handler: app.handler
    code: ./functions
    events:
"""


def problems(tmp_path: Path, events: str) -> list[str]:
    (tmp_path / "functions").mkdir(exist_ok=True)
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    _, found = parse_manifest(BASE + events, tmp_path / "lambdad.yaml", {})
    return [str(p) for p in found]


@pytest.mark.parametrize(("events", "expected"), [
    ('      - api: {listener: web, route: "GET /x"}\n      - api: {listener: web, route: "GET /x"}\n',
     "route 'GET /x' on listener 'web' is already used by function 'f'"),
    ('      - api: {listener: web, route: "GET /a/{id}"}\n      - alb: {listener: web, path: /a/*}\n',
     "can both take GET /a/x: put them on separate listeners"),
    ('      - api: {listener: web}\n      - alb: {listener: web, path: /a/*}\n', "can both take GET /a/"),
    ("      - url: {listener: web}\n      - api: {listener: web}\n",
     "listener 'web' serves the URL of function 'f' (every path and method)"),
    ('      - api: {listener: web, route: "GET /{p+}/x"}\n', "must be the last segment"),
    ("      - api: {listener: nope}\n", "listener 'nope' is not defined (known: edge, web)"),
    ('      - api: {listener: web, route: "GET /z/{a}"}\n      - api: {listener: web, route: "GET /z/{b}"}\n',
     "conflicts with route 'GET /z/{a}' (function 'f'): they differ only in the variables' names"),
    ("      - url: {listener: web, port: 9999}\n", "give listener, or host and port, not both"),
    ('      - api: {listener: web, payload_format: "3.0"}\n', "payload_format"),
    ("      - api: {listener: web, timeout: 0}\n", "timeout"),
])
def test_manifest_refuses(tmp_path: Path, events: str, expected: str):
    found = problems(tmp_path, events)
    assert len(found) == 1 and expected in found[0], found


def test_disjoint_alb_rules_and_routes_share_a_listener(tmp_path: Path):
    events = ('      - api: {listener: web, route: "ANY /api/{proxy+}"}\n'
              '      - alb: {listener: web, path: /static/*, methods: [GET]}\n'
              '      - alb: {listener: web, path: /api/*, methods: [POST]}\n'
              '      - api: {listener: web, route: "GET /api2/{x}"}\n')
    found = problems(tmp_path, events)
    assert len(found) == 1 and "route 'ANY /api/{proxy+}'" in found[0]  # ANY meets the POST rule on /api/*
    assert problems(tmp_path, events.replace("ANY /api/{proxy+}", "GET /api/{proxy+}")) == []


def test_a_url_without_a_listener_gets_its_own(tmp_path: Path):
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    manifest, found = parse_manifest(BASE + "      - url: {port: 0}\n", tmp_path / "lambdad.yaml", {})
    assert found == [] and manifest is not None
    (trigger,) = manifest.functions["f"].events
    assert isinstance(trigger, ApiTrigger) and trigger.function_url
    assert manifest.listeners[trigger.listener].url_of == "f"


@pytest.mark.parametrize(("written", "stored"), [("2.0", "2.0"), ("1.0", "1.0"), (1, "1.0"), (2.0, "2.0")])
def test_payload_format_written_as_a_number(tmp_path: Path, written, stored: str):
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    manifest, found = parse_manifest(BASE + f"      - api: {{listener: web, payload_format: {written}}}\n",
                                     tmp_path / "lambdad.yaml", {})
    assert found == [] and manifest is not None
    assert manifest.functions["f"].events[0].payload_format == stored


@pytest.mark.parametrize(("events", "bad"), [
    ("      - alb: {listener: web, path: /café/*}\n", "'é'"),
    ("      - alb: {listener: web, path: '/a b/*'}\n", "' '"),
    ("      - alb: {listener: web, path: '/a%20b/*'}\n", "'%'"),
    ("      - alb: {listener: web, path: '/a[1]'}\n", "'['"),
    ("      - alb: {listener: web, path: '/{x}'}\n", "'{'"),
    ('      - alb: {listener: web, path: "/tab\\there"}\n', "'\\t'"),
])
def test_alb_path_patterns_use_only_the_characters_alb_allows(tmp_path: Path, events: str, bad: str):
    (found,) = problems(tmp_path, events)
    assert "lambdad.yaml:10:" in found and "path pattern" in found and f"{bad} is not allowed (ALB allows" in found, found
    assert "\n" not in found


@pytest.mark.parametrize("path", ["/*", "/a-Z_0.9/~$/*", "/it's/\"q\"/@me:+&/x?"])
def test_alb_path_patterns_alb_allows(tmp_path: Path, path: str):
    assert problems(tmp_path, f"      - alb: {{listener: web, path: {json.dumps(path)}}}\n") == []


@pytest.mark.parametrize(("route", "bad"), [
    ("GET /café/{id}", "'é'"),
    ("GET /a+b", "'+'"),
    ("GET /a%20b", "'%'"),
    ("ANY /~user/{proxy+}", "'~'"),
    ("GET /x/it's", '"\'"'),
])
def test_rest_route_literals_use_only_what_api_gateway_allows(tmp_path: Path, route: str, bad: str):
    (found,) = problems(tmp_path, f'      - api: {{listener: web, route: "{route}", payload_format: "1.0"}}\n')
    assert "lambdad.yaml:10:" in found and f"{bad} is not allowed in a REST API (payload 1.0) path part" in found, found


@pytest.mark.parametrize("route", ["GET /a-Z_0.9/{id}", "POST /v1/events:batch", "ANY /{proxy+}", "$default"])
def test_rest_routes_api_gateway_allows(tmp_path: Path, route: str):
    assert problems(tmp_path, f'      - api: {{listener: web, route: "{route}", payload_format: "1.0"}}\n') == []


def test_http_api_routes_match_the_decoded_path_so_any_literal_can_match(tmp_path: Path):
    assert problems(tmp_path, '      - api: {listener: web, route: "GET /café/{id}"}\n') == []
