"""An ALB-style listener: route a request by its rules, invoke the function synchronously with the
event ALB would build, and turn the result into the HTTP response ALB would send.

Every failure ALB answers with 502 (function error, timeout, throttle, invalid response) is a 502
here too, and the function's log says which it was, since the client only sees "Bad Gateway".
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.events.alb import MAX_BODY_BYTES, InvalidResponse, alb_event, alb_response
from lambdad.http.asgi import BodyTooLarge, Receive, Scope, Send, header, read_body, respond
from lambdad.http.routing import Rule, listener_rules, route
from lambdad.logs import LogRecord
from lambdad.manifest.model import Manifest
from lambdad.runtime.functions import ShuttingDown

if TYPE_CHECKING:
    from lambdad.runtime.functions import Functions

_PAGE = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n</body>\r\n</html>\r\n"


def target_group_arn(manifest: Manifest, listener: str, function: str) -> str:
    """A stable ARN for the (listener, function) target group, shaped as ALB's: name ≤ 32, hex id."""
    name = f"{listener}-{function}".replace("_", "-")[:32].strip("-")
    digest = hashlib.sha1(f"{listener}/{function}".encode()).hexdigest()[:16]
    return f"arn:aws:elasticloadbalancing:{manifest.region}:{manifest.account}:targetgroup/{name}/{digest}"


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}"


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class AlbListener:
    """ASGI app for one listener. A reload calls `update`; a request in progress keeps the rules it found."""

    def __init__(self, name: str, manifest: Manifest, functions: Functions, executor: Executor) -> None:
        self.name = name
        self.functions = functions
        self._executor = executor
        self.port = 0  #: the port it listens on (known once bound)
        self._config: tuple[Manifest, list[Rule]] = (manifest, listener_rules(manifest, name))

    def update(self, manifest: Manifest) -> None:
        self._config = (manifest, listener_rules(manifest, self.name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        manifest, rules = self._config
        method, path = scope["method"], scope["path"]
        rule = route(rules, method, path, header(scope, b"host") or "")
        if rule is None:
            await respond(send, 404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")
            return
        try:
            body = await read_body(scope, receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await self._page(send, 413, "413 Request Entity Too Large")
            return
        event = alb_event(
            target_group_arn=target_group_arn(manifest, self.name, rule.function),
            method=method,
            path=path,
            query=scope["query_string"].decode("latin-1"),
            headers=self._headers(scope),
            body=body,
            multi_value=rule.trigger.multi_value_headers,
        )
        await self._forward(send, rule, json.dumps(event).encode())

    def _headers(self, scope: Scope) -> list[tuple[str, str]]:
        """The request's headers, lower-cased, with those ALB adds."""
        headers = [(k.decode("latin-1"), _text(v)) for k, v in scope["headers"]]
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        forwarded = next((v for k, v in reversed(headers) if k == "x-forwarded-for"), None)
        drop = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
        headers = [(k, v) for k, v in headers if k not in drop]
        if not any(k == "x-amzn-trace-id" for k, _ in headers):
            headers.append(("x-amzn-trace-id", trace_id()))
        headers += [("x-forwarded-for", f"{forwarded}, {client}" if forwarded else client),
                    ("x-forwarded-port", str(self.port)), ("x-forwarded-proto", "http")]
        return headers

    async def _forward(self, send: Send, rule: Rule, payload: bytes) -> None:
        try:
            result = await self.functions.invoke_async(rule.function, payload, self._executor)
        except TooManyRequests as e:
            return await self._bad_gateway(send, rule, f"throttled ({e.reason})")
        except (FunctionNotFound, ShuttingDown):
            return await self._page(send, 503, "503 Service Temporarily Unavailable")
        if result.function_error:
            return await self._bad_gateway(send, rule, f"the function failed ({result.error_type})")
        try:
            response = alb_response(result.payload, rule.trigger.multi_value_headers)
        except InvalidResponse as e:
            return await self._bad_gateway(send, rule, f"invalid response: {e}")
        await respond(send, response.status, response.headers, response.body)

    async def _bad_gateway(self, send: Send, rule: Rule, why: str) -> None:
        log = self.functions.logbook.function(rule.function)
        log.write([LogRecord(time.time(), "", f"[lambdad] listener {self.name}: 502 Bad Gateway: {why}")])
        await self._page(send, 502, "502 Bad Gateway")

    @staticmethod
    async def _page(send: Send, status: int, title: str) -> None:
        await respond(send, status, [("content-type", "text/html")], _PAGE.format(title).encode())
