"""API Gateway's events (payload 2.0 and 1.0) and what it makes of a function's response."""

from __future__ import annotations

import base64
import json

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model

from lambdad.payloads.alb import InvalidResponse
from lambdad.payloads.apigateway import Api, Request, v1_event, v1_response, v2_event, v2_response

B64_TEXT = base64.b64encode(b"\x00\x01").decode()
API = Api(account="123456789012", api_id="abcdefghij", domain="abcdefghij.example.test", request_id="r-1",
          now=1583348638.390)


def request(**kw) -> Request:
    base = dict(method="GET", raw_path="/p", raw_query="", headers=(("host", "h"), ("user-agent", "ua")), body=b"",
                source_ip="10.0.0.1")
    return Request(**{**base, **kw})


def test_v2_event_shape():
    event = v2_event(request(raw_query="a=1&a=2&b=%20x", headers=(
        ("host", "h"), ("cookie", "c1=1; c2=2"), ("x-r", "1"), ("x-r", "2"), ("content-type", "text/plain")),
        body=b"hi"), API, "GET /p", {})
    APIGatewayProxyEventV2Model(**event)
    assert event["cookies"] == ["c1=1", "c2=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-r"] == "1,2"
    assert event["queryStringParameters"] == {"a": "1,2", "b": " x"}
    assert event["requestContext"]["time"] == "04/Mar/2020:19:03:58 +0000"
    assert event["requestContext"]["timeEpoch"] == 1583348638390
    assert (event["body"], event["isBase64Encoded"]) == ("hi", False)
    assert "pathParameters" not in event


@pytest.mark.parametrize(("content_type", "body", "encoded"), [
    ("application/json", b'{"a": 1}', False),
    ("image/png", b"\x89PNG", True),
    ("text/plain", b"\xff\xfe", True),  # text by its type, but not UTF-8: base64 keeps it intact
    ("application/x-www-form-urlencoded", b"a=1", True),  # not one of the text types
    (None, b"hi", True),  # no Content-Type: binary to an HTTP API
])
def test_http_api_bodies_are_base64_unless_text(content_type: str, body: bytes, encoded: bool):
    event = v2_event(request(headers=(("content-type", content_type),) if content_type else (), body=body), API,
                     "$default", {})
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == body


PNG = b"\x89PNG\r\n\x1a\n\x00\xff"


@pytest.mark.parametrize(("types", "content_type", "body", "sent"), [
    ((), "image/png", PNG, "\ufffdPNG\r\n\x1a\n\x00\ufffd"),  # no binaryMediaTypes: UTF-8 text, corrupted
    ((), "application/json", b'{"a": 1}', '{"a": 1}'),
    ((), None, "é".encode(), "é"),
    (("image/png",), "image/png", PNG, None),
    (("image/png",), "IMAGE/PNG; q=1", PNG, None),
    (("image/*",), "image/webp", PNG, None),
    (("image/*",), "application/octet-stream", PNG, "\ufffdPNG\r\n\x1a\n\x00\ufffd"),
    (("*/*",), "text/plain", b"hi", None),  # */* makes even text binary
    (("*/*",), None, b"hi", "hi"),  # no Content-Type: nothing to match
    (("multipart/form-data",), "multipart/form-data; boundary=x", b"--x\r\n", None),
])
def test_rest_api_bodies_are_base64_only_for_binary_media_types(types, content_type, body, sent):
    headers = (("host", "h"),) + ((("content-type", content_type),) if content_type else ())
    event = v1_event(request(headers=headers, body=body), API, "/p", {}, binary_media_types=types)
    APIGatewayProxyEventModel(**event)
    if sent is None:
        assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body
    else:
        assert (event["body"], event["isBase64Encoded"]) == (sent, False)


def test_v1_event_shape():
    event = v1_event(request(raw_query="t=a&t=b", headers=(("x-amz-thing", "1"), ("x-amz-thing", "2"))),
                     API, "/p", {})
    APIGatewayProxyEventModel(**event)
    assert event["headers"] == {"X-Amz-Thing": "2"} and event["multiValueHeaders"] == {"X-Amz-Thing": ["1", "2"]}
    assert event["queryStringParameters"] == {"t": "b"}
    assert event["multiValueQueryStringParameters"] == {"t": ["a", "b"]}
    assert event["pathParameters"] is None and event["body"] is None and event["stageVariables"] is None
    empty = v1_event(request(headers=()), API, "/p", {"id": "1"})
    assert empty["queryStringParameters"] is None and empty["pathParameters"] == {"id": "1"}


@pytest.mark.parametrize(("payload", "status", "headers", "body"), [
    ({"statusCode": 201, "headers": {"x": "1"}, "body": "b"}, 201, [("x", "1")], b"b"),
    ({"statusCode": 200, "cookies": ["a=1", "b=2"]}, 200, [("set-cookie", "a=1"), ("set-cookie", "b=2")], b""),
    ({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}, 200, [],
     b"\x00\x01"),
    ({"hello": "world"}, 200, [("content-type", "application/json")], b'{"hello": "world"}'),
    ("text", 200, [("content-type", "application/json")], b'"text"'),
    (None, 200, [("content-type", "application/json")], b"null"),
])
def test_v2_responses(payload, status: int, headers: list, body: bytes):
    response = v2_response(json.dumps(payload).encode())
    assert (response.status, response.headers, response.body) == (status, headers, body)


@pytest.mark.parametrize(("payload", "why"), [
    ({"statusCode": "abc"}, "statusCode"),
    ({"statusCode": 200, "body": 5}, "body must be a string"),
    ({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "not valid base64"),
    ({"statusCode": 200, "cookies": "a=1"}, "cookies"),
    ({"statusCode": 101}, r"statusCode 101 is informational \(1xx\)"),
    ({"statusCode": "103"}, r"statusCode 103 is informational \(1xx\)"),  # (API Gateway reads a string's digits)
    ({"statusCode": 200, "headers": {"X-A": "1\r\nX-B: 2"}}, r"headers: header X-A has a control character"),
    ({"statusCode": 200, "headers": {"a b": "1"}}, r'headers: header name "a b" is not an HTTP token'),
    ({"statusCode": 200, "headers": {"X-A": "\u2603"}}, r"headers: header X-A has '\u2603' in its value"),
    ({"statusCode": 200, "cookies": ["a=1; Path=/", "b=2\r\nX-B: 2"]},
     r"cookies: header set-cookie has a control character \('\\r'\)"),
    ({"statusCode": 200, "cookies": ["\u00e9=\u2603"]}, r"cookies: header set-cookie has '\u2603' in its value"),
])
def test_v2_responses_api_gateway_refuses(payload, why: str):
    with pytest.raises(InvalidResponse, match=why):
        v2_response(json.dumps(payload).encode())


def test_v1_responses():
    response = v1_response(json.dumps({"statusCode": 200, "headers": {"A": "1", "B": "1"},
                                       "multiValueHeaders": {"B": ["2", "3"]}, "body": "x"}).encode())
    assert sorted(response.headers) == [("A", "1"), ("B", "2"), ("B", "3")] and response.body == b"x"
    nulls = v1_response(json.dumps({"statusCode": 204, "headers": None, "multiValueHeaders": None, "body": None}).encode())
    assert (nulls.status, nulls.headers, nulls.body) == (204, [], b"")
    for bad, why in (({"hello": "world"}, "statusCode"), ("text", "JSON object"),
                     ({"statusCode": 200, "extra": 1}, "unexpected key"),
                     ({"statusCode": 200, "cookies": ["a=1"]}, r"unexpected key\(s\) cookies"),  # a 2.0 field
                     ({"statusCode": 200, "body": {"a": 1}}, "body must be a string"),
                     ({"statusCode": 100}, r"statusCode 100 is informational \(1xx\)"),
                     ({"statusCode": 200, "headers": {"X-A": "a\nb"}}, "headers: header X-A has a control character"),
                     ({"statusCode": 200, "multiValueHeaders": {"": ["a"]}},
                      'multiValueHeaders: header name "" is not an HTTP token')):
        with pytest.raises(InvalidResponse, match=why):
            v1_response(json.dumps(bad).encode())
    with pytest.raises(InvalidResponse, match="not JSON"):
        v1_response(b"{")


@pytest.mark.parametrize(("binary", "body"), [(False, B64_TEXT.encode()), (True, b"\x00\x01")])
def test_rest_api_decodes_base64_responses_only_for_binary_accept_types(binary: bool, body: bytes):
    payload = json.dumps({"statusCode": 200, "headers": {"Content-Type": "image/png"}, "body": B64_TEXT,
                          "isBase64Encoded": True}).encode()
    assert v1_response(payload, binary).body == body


def test_rest_api_refuses_a_bad_is_base64_encoded_even_when_it_would_not_decode():
    with pytest.raises(InvalidResponse, match="isBase64Encoded"):
        v1_response(json.dumps({"statusCode": 200, "isBase64Encoded": "yes"}).encode())
