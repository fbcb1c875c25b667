"""ALB's request events, its reading of function responses, and its rule matching: pure and table-driven."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import AlbModel

from lambdad.http.routing import listener_rules, pattern, route
from lambdad.manifest.model import AlbTrigger, Function, Manifest
from lambdad.payloads.alb import InvalidResponse, alb_event, alb_response, header_problem, is_text, query_pairs

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-f/0123456789abcdef"


def event(headers=(), query="", body=b"", multi=False, method="GET", path="/"):
    return alb_event(target_group_arn=ARN, method=method, path=path, query=query, headers=list(headers), body=body,
                     multi_value=multi)


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        ("", []),
        ("a=1", [("a", "1")]),
        ("a=1&a=2&b", [("a", "1"), ("a", "2"), ("b", "")]),
        ("q=a%20b&x=%2F", [("q", "a%20b"), ("x", "%2F")]),  # ALB leaves them URL-encoded
        ("k%20ey=v=w&&", [("k%20ey", "v=w")]),
    ],
)
def test_query_strings_stay_encoded(raw, pairs):
    assert query_pairs(raw) == pairs


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ([], True),
        ([("content-type", "text/html; charset=utf-8")], True),
        ([("content-type", "application/json")], True),
        ([("content-type", "application/xml")], True),
        ([("content-type", "application/javascript")], True),
        ([("content-type", "application/octet-stream")], False),
        ([("content-type", "image/png")], False),
        ([("content-type", "text/plain"), ("content-encoding", "gzip")], False),
    ],
)
def test_which_bodies_are_base64(headers, text):
    assert is_text(headers) is text


def test_single_value_event_matches_albs_shape():
    e = event([("host", "h"), ("x-a", "1"), ("x-a", "2")], "n=1&n=2", b'{"k": 1}', method="POST", path="/p")
    AlbModel(**e)
    assert e == {
        "requestContext": {"elb": {"targetGroupArn": ARN}}, "httpMethod": "POST", "path": "/p",
        "queryStringParameters": {"n": "2"}, "headers": {"host": "h", "x-a": "2"},
        "body": '{"k": 1}', "isBase64Encoded": False,
    }


def test_multi_value_event_keeps_every_value_and_nothing_else():
    e = event([("x-a", "1"), ("x-a", "2")], "n=1&n=2", multi=True)
    assert e["multiValueHeaders"] == {"x-a": ["1", "2"]} and e["multiValueQueryStringParameters"] == {"n": ["1", "2"]}
    assert "headers" not in e and "queryStringParameters" not in e


def test_binary_and_undecodable_bodies_are_base64():
    png = b"\x89PNG\r\n\x1a\n\xff"
    e = event([("content-type", "image/png")], body=png)
    assert e["isBase64Encoded"] and base64.b64decode(e["body"]) == png
    e = event([("content-type", "text/plain")], body=b"\xff\xfe")  # says text, is not UTF-8
    assert e["isBase64Encoded"] and base64.b64decode(e["body"]) == b"\xff\xfe"


def doc(**fields) -> bytes:
    return json.dumps(fields).encode()


B64 = base64.b64encode(b"\x00\x01").decode()


@pytest.mark.parametrize(
    ("payload", "multi", "status", "headers", "body"),
    [
        (doc(statusCode=200, isBase64Encoded=False, headers={"A": "1"}, body="hi"), False, 200, [("A", "1")], b"hi"),
        (doc(statusCode=200), False, 200, [], b""),  # ALB supplies the rest
        (doc(statusCode=204), True, 204, [], b""),
        (doc(statusCode=200, body="hi"), False, 200, [], b"hi"),  # no isBase64Encoded: false
        (doc(statusCode=301, statusDescription="301 Moved Permanently", headers={"Location": "/x"}), False, 301,
         [("Location", "/x")], b""),
        (doc(statusCode=200, statusDescription="whatever"), False, 200, [], b""),  # ALB does not check its form
        (doc(statusCode=200, isBase64Encoded=True, headers={}, body=B64), False, 200, [], b"\x00\x01"),
        (doc(statusCode=200, isBase64Encoded=False, multiValueHeaders={"Set-Cookie": ["a=1", "b=2"]}), True, 200,
         [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b""),
        # the key the target group does not use is ignored, null or not
        (doc(statusCode=200, headers={"A": "1"}, multiValueHeaders=None), False, 200, [("A", "1")], b""),
        (doc(statusCode=200, headers={"A": "1"}), True, 200, [], b""),
        (doc(statusCode=200, headers=None, multiValueHeaders={"A": ["1"]}), True, 200, [("A", "1")], b""),
        (doc(statusCode=200, isBase64Encoded=False, headers={"Connection": "close", "Content-Length": "9", "B": "2"}),
         False, 200, [("B", "2")], b""),
        (doc(statusCode=200, extra={"x": 1}), False, 200, [], b""),  # keys ALB does not know are ignored
    ],
)
def test_responses_alb_accepts(payload, multi, status, headers, body):
    got = alb_response(payload, multi)
    assert (got.status, got.headers, got.body) == (status, headers, body)


@pytest.mark.parametrize(
    ("payload", "multi", "message"),
    [
        (b"not json", False, "the response is not JSON"),
        (b'"a string"', False, "the response must be a JSON object, not str"),
        (b"null", False, "the response must be a JSON object, not NoneType"),
        (doc(body="x"), False, "statusCode is required"),
        (doc(statusCode=None), False, "statusCode must be an integer from 100 to 599, not null"),
        (doc(statusCode="200"), False, 'statusCode must be an integer from 100 to 599, not "200"'),
        (doc(statusCode=200.0), False, "statusCode must be an integer from 100 to 599, not 200.0"),
        (doc(statusCode=True), False, "statusCode must be an integer from 100 to 599, not true"),
        (doc(statusCode=700), False, "statusCode must be an integer from 100 to 599, not 700"),
        (doc(statusCode=101), False, "statusCode 101 is informational (1xx); a response needs one from 200 to 599"),
        (doc(statusCode=100, body="x"), False, "statusCode 100 is informational (1xx); a response needs one from 200 "
                                               "to 599"),
        (doc(statusCode=200, headers={"X-A": "1\r\nX-B: 2"}), False,
         "headers: header X-A has a control character ('\\r') in its value"),
        (doc(statusCode=200, multiValueHeaders={"X-A": ["ok", "a\nb"]}), True,
         "multiValueHeaders: header X-A has a control character ('\\n') in its value"),
        (doc(statusCode=200, headers={"": "a"}), False,
         "headers: header name \"\" is not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)"),
        (doc(statusCode=200, headers={"Content-Length": "\x00"}), False,  # checked before hop-by-hop ones are dropped
         "headers: header Content-Length has a control character ('\\x00') in its value"),
        (doc(statusCode=200, statusDescription=None), False, 'statusDescription must be a string, such as "200 OK", '
                                                             "not null"),
        (doc(statusCode=200, statusDescription=200), False, 'statusDescription must be a string, such as "200 OK", '
                                                            "not 200"),
        (doc(statusCode=200, isBase64Encoded=None), False, "isBase64Encoded must be true or false, not null"),
        (doc(statusCode=200, isBase64Encoded="false"), False, 'isBase64Encoded must be true or false, not "false"'),
        (doc(statusCode=200, body=None), False, "body must be a string, not null"),
        (doc(statusCode=200, body={"a": 1}), False, 'body must be a string, not {"a": 1}'),
        (doc(statusCode=200, headers=None), False, "headers must be an object"),
        (doc(statusCode=200, headers={"Content-Length": 5}), False, "headers.Content-Length must be a string, not 5"),
        (doc(statusCode=200, headers={"X-Ok": True}), False, "headers.X-Ok must be a string, not true"),
        (doc(statusCode=200, headers={"X-No": None}), False, "headers.X-No must be a string, not null"),
        (doc(statusCode=200, multiValueHeaders=None), True, "multiValueHeaders must be an object"),
        (doc(statusCode=200, multiValueHeaders={"A": "1"}), True, "multiValueHeaders.A must be a list of strings"),
        (doc(statusCode=200, multiValueHeaders={"A": [1]}), True, "multiValueHeaders.A must be a string, not 1"),
        (doc(statusCode=200, isBase64Encoded=True, headers={}, body="%%%"), False,
         "body is not valid base64, but isBase64Encoded is true"),
        (doc(statusCode=200, isBase64Encoded=False, headers={}, body="x" * (1024 * 1024)), False,
         "the response is 1048648 bytes; ALB accepts at most 1048576"),
    ],
)
def test_responses_alb_answers_with_502(payload, multi, message):
    with pytest.raises(InvalidResponse) as e:
        alb_response(payload, multi)
    assert str(e.value) == message


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("Content-Type", "text/html; charset=utf-8", None),
    ("X-Odd-But-Legal", "a\tb  \"quoted\" (comment) ,;=", None),  # a tab, and any visible character
    ("!#$%&'*+-.^_`|~09azAZ", "x", None),  # every token character
    ("X-Latin", "caf\u00e9", None),  # ISO-8859-1 text goes as its one byte
    ("X-Empty", "", None),
    ("", "a", 'header name "" is not an HTTP token'),
    ("X A", "a", 'header name "X A" is not an HTTP token'),
    ("X:A", "a", 'header name "X:A" is not an HTTP token'),
    ("X-A\r\nX-B", "a", 'header name "X-A\\r\\nX-B" is not an HTTP token'),
    ("X-Caf\u00e9", "a", 'header name "X-Caf\\u00e9" is not an HTTP token'),
    ("X-A", "a\rb", "header X-A has a control character ('\\r') in its value"),
    ("X-A", "a\nb", "header X-A has a control character ('\\n') in its value"),
    ("X-A", "a\x00b", "header X-A has a control character ('\\x00') in its value"),
    ("X-A", "a\x7f", "header X-A has a control character ('\\x7f') in its value"),
    ("X-A", "5 \u20ac", "header X-A has '\u20ac' in its value: HTTP header values are ISO-8859-1 text"),
])
def test_headers_http_can_carry(name: str, value: str, problem: str | None):
    found = header_problem(name, value)
    assert found == problem if problem is None else found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    ("glob", "text", "ignore_case", "matches"),
    [
        ("/img/*", "/img/", False, True),
        ("/img/*", "/img/a/b.png", False, True),
        ("/img/*", "/IMG/a", False, False),  # paths are case-sensitive
        ("/a?c", "/abc", False, True),
        ("/a?c", "/ac", False, False),
        ("/a.c", "/abc", False, False),  # only * and ? are special
        ("*.example.com", "API.Example.COM", True, True),  # hosts are not
        ("*.example.com", "example.com", True, False),
    ],
)
def test_patterns_match_as_albs(glob, text, ignore_case, matches):
    assert (pattern(glob, ignore_case).match(text) is not None) is matches


def test_rules_are_tried_by_priority_then_manifest_order(tmp_path: Path):
    def fn(name, *triggers):
        return Function(name, "a.h", tmp_path, "python3", events=triggers)

    m = Manifest(tmp_path / "lambdad.yaml", functions={
        "late": fn("late", AlbTrigger("web", "/*")),
        "post": fn("post", AlbTrigger("web", "/x/*", methods=("POST",), priority=2)),
        "host": fn("host", AlbTrigger("web", "/x/*", host="*.example.com", priority=1)),
        "any": fn("any", AlbTrigger("web", "/x/*", priority=3), AlbTrigger("other", "/*")),
    })
    rules = listener_rules(m, "web")
    assert [r.function for r in rules] == ["host", "post", "any", "late"]
    assert route(rules, "GET", "/x/1", "a.example.com:8080").function == "host"
    assert route(rules, "POST", "/x/1", "localhost").function == "post"
    assert route(rules, "GET", "/x/1", "localhost").function == "any"
    assert route(rules, "GET", "/y", "localhost").function == "late"
    assert route(listener_rules(m, "nobody"), "GET", "/", "h") is None
