"""The request event an Application Load Balancer sends a Lambda target, and what it makes of the
function's response. Pure functions: the listener (lambdad/http/listener.py) does the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

#: ALB refuses a request body over 1 MB (413) and a response over 1 MB (502).
MAX_BODY_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 1024 * 1024
#: Sent raw; every other content type is base64 (as is any body with a content-encoding).
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")
#: ALB drops these from a function's response and computes Content-Length itself.
HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "content-length", "upgrade",
                        "proxy-connection", "te", "trailer"})

if TYPE_CHECKING:
    from lambdad.manifest.model import Manifest


def is_text(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether ALB passes the body as text (`isBase64Encoded: false`)."""
    content_type = ""
    for name, value in headers:
        if name == "content-encoding":
            return False
        if name == "content-type":
            content_type = value.strip().lower()
    return not content_type or content_type.startswith(TEXT_TYPES)


def query_pairs(raw: str) -> list[tuple[str, str]]:
    """`a=1&b=%20x&flag` → [("a", "1"), ("b", "%20x"), ("flag", "")]: ALB does not decode them."""
    pairs = []
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def alb_event(
    *,
    target_group_arn: str,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    multi_value: bool,
) -> dict:
    """The event, with `headers` already lower-cased and in arrival order (ALB's own included), and
    `path` as sent, still percent-encoded (ALB decodes neither it nor the query)."""
    text = is_text(headers)
    event: dict = {
        "requestContext": {"elb": {"targetGroupArn": target_group_arn}},
        "httpMethod": method,
        "path": path,
    }
    pairs = query_pairs(query)
    if multi_value:
        event["multiValueQueryStringParameters"] = _grouped(pairs)
        event["multiValueHeaders"] = _grouped(headers)
    else:
        event["queryStringParameters"] = dict(pairs)  # the last value wins
        event["headers"] = dict(headers)
    try:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
        event["isBase64Encoded"] = not text
    except UnicodeDecodeError:  # text by its type, not by its bytes: base64 keeps it intact
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


class InvalidResponse(ValueError):
    """The function's response is not one ALB can send (the client gets a 502)."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def final_status(status: int) -> int:
    """A function answers a request with its one final response: a 1xx is not one (a 101 would switch
    the connection to another protocol, which neither ALB nor API Gateway does for a Lambda target).

    Raises:
        InvalidResponse: `status` is below 200.
    """
    if status < 200:
        raise InvalidResponse(f"statusCode {status} is informational (1xx); a response needs one from 200 to 599")
    return status


def _status_code(value: object) -> bool:
    return type(value) is int and 100 <= value <= 599  # a JSON integer: ALB refuses "200" (a string) and 200.0


#: What ALB checks of a response, field by field: (field, test, why it fails). Every field but
#: statusCode may be left out; one that is present must pass, and null passes none of them (ALB
#: answers 502 to `"body": null` or `"statusDescription": null`, not to a missing body).
RESPONSE_FIELDS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("statusCode", _status_code, "must be an integer from 100 to 599"),
    ("statusDescription", lambda v: isinstance(v, str), "must be a string, such as \"200 OK\""),
    ("isBase64Encoded", lambda v: isinstance(v, bool), "must be true or false"),
    ("body", lambda v: isinstance(v, str), "must be a string"),
)


def alb_response(payload: bytes, multi_value: bool) -> HttpResponse:
    """The HTTP response ALB makes of a function's result.

    `{"statusCode": 200}` is enough: ALB supplies the rest. The headers come from `multiValueHeaders`
    when the target group has multi-value headers enabled and from `headers` otherwise; the other
    key is ignored, as ALB ignores it.

    Raises:
        InvalidResponse: too large, not a JSON object, or a field ALB refuses (see RESPONSE_FIELDS).
    """
    if len(payload) > MAX_RESPONSE_BYTES:
        raise InvalidResponse(f"the response is {len(payload)} bytes; ALB accepts at most {MAX_RESPONSE_BYTES}")
    try:
        doc = json.loads(payload)
    except ValueError:
        raise InvalidResponse("the response is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidResponse(f"the response must be a JSON object, not {type(doc).__name__}")
    if "statusCode" not in doc:
        raise InvalidResponse("statusCode is required")
    for name, test, why in RESPONSE_FIELDS:
        if name in doc and not test(doc[name]):
            raise InvalidResponse(f"{name} {why}, not {json.dumps(doc[name])[:40]}")
    status = final_status(doc["statusCode"])
    key = "multiValueHeaders" if multi_value else "headers"
    headers = response_headers(doc[key], multi_value, key, strings_only=True) if key in doc else []
    return HttpResponse(status, headers, response_body(doc.get("body"), doc.get("isBase64Encoded", False)))


def response_body(body: object, encoded: bool) -> bytes:
    """A response's `body`, decoded when `isBase64Encoded` says so (API Gateway's rules are the same)."""
    if body is None:
        return b""
    if not isinstance(body, str):
        raise InvalidResponse("body must be a string")
    if not encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidResponse("body is not valid base64, but isBase64Encoded is true") from None


#: RFC 9110 `token`: what a field name may be made of (one character at least).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: Control characters a field value may not hold (a tab may: RFC 9110 `field-content`). CR and LF
#: would end the header early: whatever followed would be a header (or a body) of its own.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` cannot go on the wire as one response header, or None."""
    if not _TOKEN.match(name):
        return f"header name {json.dumps(name)[:40]} is not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)"
    found = _CONTROL.search(value)
    if found:
        return f"header {name} has a control character ({found.group()!r}) in its value"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as e:
        return f"header {name} has {value[e.start]!r} in its value: HTTP header values are ISO-8859-1 text"
    return None


def checked_header(name: str, value: str, key: str) -> tuple[str, str]:
    """`(name, value)`, or InvalidResponse naming the `key` (`headers`, `cookies`) it came from."""
    problem = header_problem(name, value)
    if problem:
        raise InvalidResponse(f"{key}: {problem}")
    return name, value


def response_headers(raw: object, multi_value: bool, key: str, strings_only: bool = False) -> list[tuple[str, str]]:
    """A response's `headers` (or `multiValueHeaders`), without the hop-by-hop ones.

    `strings_only`: ALB answers 502 to a number or boolean as a header value; API Gateway sends its text.

    Raises:
        InvalidResponse: a value of the wrong type, or a header HTTP cannot carry (see `header_problem`).
    """
    if not isinstance(raw, dict):
        raise InvalidResponse(f"{key} must be an object")
    headers = []
    for name, value in raw.items():
        values = value if multi_value else [value]
        if not isinstance(values, list):
            raise InvalidResponse(f"{key}.{name} must be a list of strings")
        for v in values:
            if not isinstance(v, str) and (strings_only or isinstance(v, bool) or not isinstance(v, int | float)):
                raise InvalidResponse(f"{key}.{name} must be a string, not {json.dumps(v)[:40]}")
            header = checked_header(str(name), str(v), key)
            if header[0].lower() not in HOP_BY_HOP:
                headers.append(header)
    return headers

def target_group_arn(manifest: Manifest, listener: str, function: str) -> str:
    """A stable ARN for the (listener, function) target group, shaped as ALB's: name ≤ 32, hex id."""
    name = f"{listener}-{function}".replace("_", "-")[:32].strip("-")
    digest = hashlib.sha1(f"{listener}/{function}".encode()).hexdigest()[:16]
    return f"arn:aws:elasticloadbalancing:{manifest.region}:{manifest.account}:targetgroup/{name}/{digest}"

