"""The events API Gateway sends a Lambda proxy integration (payload formats 2.0 and 1.0) and what it
makes of the function's response. Pure functions: the listener (lambdad/http/listener.py) does I/O.

2.0 (HTTP APIs): header names lower-case, repeated headers and query values joined with commas,
cookies in their own list. 1.0 (REST APIs): both the single-value maps (the last value wins) and
the multi-value ones, null for what is absent.

Paths, as captured from AWS: a REST API passes `path`, `pathParameters` and `requestContext.path`
still percent-encoded, as sent; an HTTP API decodes the path before it routes (see `http_api_path`),
so `rawPath` and `pathParameters` arrive decoded; a function URL keeps `rawPath` as sent and
decodes only `requestContext.http.path`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from lambdad.clock import utc
from lambdad.payloads.alb import (
    HttpResponse,
    InvalidResponse,
    checked_header,
    final_status,
    is_text,
    query_pairs,
    response_body,
    response_headers,
)
from lambdad.payloads.media_types import is_binary

#: API Gateway refuses a request payload over 10 MB (413).
MAX_BODY_BYTES = 10 * 1024 * 1024
FORMATS = ("2.0", "1.0")


@dataclass(frozen=True)
class Request:
    """What the events are made of, as it arrived."""

    method: str
    raw_path: str  #: percent-encoded, as sent
    raw_query: str
    headers: tuple[tuple[str, str], ...]  #: lower-case names, arrival order
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class Api:
    """Who serves the request: the fields every requestContext repeats."""

    account: str
    api_id: str
    domain: str  #: the Host the client used
    request_id: str
    now: float
    stage: str = "$default"
    function_url: bool = False  #: a Lambda function URL rather than an HTTP API (payload 2.0 only)


class BadPath(ValueError):
    """A path an HTTP API refuses before routing: the client gets 400 `{"message":"Bad Request"}`."""


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _unquoted(text: str) -> str:
    if _BAD_ESCAPE.search(text):
        raise BadPath(f"{text!r} has a % that starts no escape")
    return unquote(text)


def http_api_path(raw_path: str) -> str:
    """The path an HTTP API routes on and hands its integration (`rawPath`, `requestContext.http.path`).

    Captured from AWS: it is decoded twice, and a `?` the first decoding made ends it:
    `/a%20b` → `/a b`, `/a%2Fb` → `/a/b` (two segments), `/a%2520b` → `/a b`, `/a%253Fb` → `/a?b`,
    `/a%3Fb` → `/a`, `/a%2525` → `/a%`.

    Raises:
        BadPath: a `%` that starts no escape in either decoding (`/a%25zz`): AWS answers 400.
    """
    return _unquoted(_unquoted(raw_path).split("?", 1)[0])


def _body(request: Request) -> tuple[str, bool]:
    """HTTP APIs send text as is (ALB's text types) and base64-encode every other body, one without a
    Content-Type too (where ALB's rule would say text)."""
    if any(n == "content-type" for n, _ in request.headers) and is_text(request.headers):
        try:
            return request.body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def _request_time(now: float) -> str:
    return utc(now).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _decoded_query(raw: str) -> list[tuple[str, str]]:
    return [(unquote_plus(k), unquote_plus(v)) for k, v in query_pairs(raw)]


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def v2_event(request: Request, api: Api, route_key: str, path_parameters: dict[str, str]) -> dict:
    """Payload format 2.0 (HTTP APIs, function URLs). `path_parameters` as the route matched them, on
    `http_api_path` (a function URL has none).

    Both split the `Cookie` header into `cookies`; an HTTP API drops the header, a function URL keeps
    it as well (as captured from AWS).

    Raises:
        BadPath: an HTTP API would refuse the path.
    """
    cookies = [c.strip() for name, value in request.headers if name == "cookie" for c in value.split(";") if c.strip()]
    headers = _joined([(n, v) for n, v in request.headers if n != "cookie" or api.function_url])
    if api.function_url:
        raw_path, path = request.raw_path, unquote(request.raw_path)
    else:
        raw_path = path = http_api_path(request.raw_path)
    event: dict = {"version": "2.0", "routeKey": route_key, "rawPath": raw_path,
                   "rawQueryString": request.raw_query}
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.raw_query:
        event["queryStringParameters"] = _joined(_decoded_query(request.raw_query))
    prefix = api.domain.split(".", 1)[0].split(":", 1)[0]
    event["requestContext"] = {
        "accountId": api.account, "apiId": api.api_id, "domainName": api.domain, "domainPrefix": prefix,
        "http": {"method": request.method, "path": path, "protocol": request.protocol,
                 "sourceIp": request.source_ip, "userAgent": headers.get("user-agent", "")},
        "requestId": api.request_id, "routeKey": route_key, "stage": api.stage,
        "time": _request_time(api.now), "timeEpoch": int(api.now * 1000),
    }
    if request.body:
        event["body"], event["isBase64Encoded"] = _body(request)
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


def _title(name: str) -> str:
    """REST APIs pass header names as sent; clients send them in this form almost always."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def _rest_body(request: Request, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    """A REST API base64-encodes a body only when its Content-Type is one of the API's binary media
    types; any other body is passed as UTF-8 text, bytes that are not UTF-8 becoming U+FFFD (the
    corrupted uploads of an API without binaryMediaTypes)."""
    if not request.body:
        return None, False
    if is_binary(binary_media_types, next((v for n, v in request.headers if n == "content-type"), None)):
        return base64.b64encode(request.body).decode(), True
    return request.body.decode("utf-8", errors="replace"), False


def v1_event(request: Request, api: Api, resource: str, path_parameters: dict[str, str], *, rest: bool = True,
             binary_media_types: tuple[str, ...] = ()) -> dict:
    """Payload format 1.0. From a REST API (proxy integration): `path` and `path_parameters` as sent,
    still percent-encoded (the route matched the path as sent), bodies by `binary_media_types` (the
    API's binaryMediaTypes). From an HTTP API sending 1.0 events (`rest` false): the path decoded as
    it decodes paths, bodies by its own rules, as in its 2.0 events."""
    headers = [(_title(n), v) for n, v in request.headers]
    query = _decoded_query(request.raw_query)
    if rest:
        path = request.raw_path
        body, encoded = _rest_body(request, binary_media_types)
    else:
        path = http_api_path(request.raw_path)
        body, encoded = _body(request) if request.body else (None, False)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": dict(headers) or None,
        "multiValueHeaders": _grouped(headers) or None,
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": _grouped(query) or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": api.account, "apiId": api.api_id, "domainName": api.domain,
            "domainPrefix": api.domain.split(".", 1)[0].split(":", 1)[0],
            "extendedRequestId": api.request_id, "httpMethod": request.method,
            "identity": {"accessKey": None, "accountId": None, "caller": None, "cognitoAuthenticationProvider": None,
                         "cognitoAuthenticationType": None, "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                         "principalOrgId": None, "sourceIp": request.source_ip, "user": None,
                         "userAgent": dict(request.headers).get("user-agent", ""), "userArn": None},
            "path": path if api.stage == "$default" else f"/{api.stage}{path}",
            "protocol": request.protocol, "requestId": api.request_id,
            "requestTime": _request_time(api.now), "requestTimeEpoch": int(api.now * 1000),
            "resourceId": api.api_id[:6], "resourcePath": resource, "stage": api.stage,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


# -- responses -----------------------------------------------------------------------------------------

def _decode(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except ValueError:
        raise InvalidResponse("the response is not JSON") from None


def _status(doc: dict) -> int:
    status = doc.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidResponse("statusCode must be an integer from 100 to 599")
    return final_status(status)


def _content(doc: dict, decode: bool = True) -> bytes:
    """`decode`: whether a base64 body (`isBase64Encoded: true`) is decoded or sent as its text."""
    encoded = doc.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise InvalidResponse("isBase64Encoded must be true or false")
    return response_body(doc.get("body"), encoded and decode)


def _header_map(raw: object, key: str, multi: bool) -> list[tuple[str, str]]:
    return [] if raw is None else response_headers(raw, multi, key)


def v2_response(payload: bytes) -> HttpResponse:
    """A full response object, or any other JSON value: a 200 JSON response with it as the body."""
    doc = _decode(payload)
    if not isinstance(doc, dict) or "statusCode" not in doc:
        return HttpResponse(200, [("content-type", "application/json")], payload.strip())
    headers = _header_map(doc.get("headers"), "headers", multi=False)
    cookies = doc.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise InvalidResponse("cookies must be a list of strings")
    headers += [checked_header("set-cookie", c, "cookies") for c in cookies]
    return HttpResponse(_status(doc), headers, _content(doc))


#: The keys of a Lambda proxy response; any other (payload 2.0's `cookies` too) is a "Malformed Lambda proxy response".
V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


def v1_response(payload: bytes, binary: bool = False) -> HttpResponse:
    """REST APIs accept only the proxy response object; anything else is a 502.

    `binary`: the request's first Accept type is one of the API's binary media types. Only then does
    API Gateway decode a base64 body (`isBase64Encoded: true`); otherwise the client gets the base64 text.
    """
    doc = _decode(payload)
    if not isinstance(doc, dict):
        raise InvalidResponse(f"the response must be a JSON object, not {type(doc).__name__}")
    status = _status(doc)
    unknown = set(doc) - V1_KEYS
    if unknown:
        raise InvalidResponse(f"unexpected key(s) {', '.join(sorted(unknown))} in the response")
    single = _header_map(doc.get("headers"), "headers", multi=False)
    multi = _header_map(doc.get("multiValueHeaders"), "multiValueHeaders", multi=True)
    names = {n.lower() for n, _ in multi}
    return HttpResponse(status, multi + [(n, v) for n, v in single if n.lower() not in names], _content(doc, binary))


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}, separators=(",", ":")).encode()

