"""A listener: one HTTP port serving ALB rules, API Gateway routes, or a function URL.

ALB rules get the event ALB would build and ALB's answers to failures (a 502 for everything, the
reason in the function's log). API routes and function URLs get API Gateway's events (payload 2.0
or 1.0) and its answers: 502 `{"message": "Internal server error"}` for a function error or a bad
response, 429 for a throttle, 504 past the integration timeout (the invocation runs on, as it
does behind API Gateway). Manifest validation makes sure a request can only match one kind.

Paths as AWS treats them: ALB matches its rules against the path as sent and passes it on so; a
REST route (payload 1.0) matches and gets it as sent; an HTTP API decodes it before routing (a bad
escape is its 400). No route: a listener of REST routes only answers as a REST API does (403
`Missing Authentication Token`), any other as an HTTP API (404 `Not Found`).

One error mapper, in `ListenerApp.__call__`, answers whatever else a request raises in the words of
the face it reached: a request that is not whole (the client went away, a bad Content-Length) is
400, and lambdad's own failure is logged once with its traceback and answered as the AWS service
answers its own: ALB's 500 page, API Gateway's 500 `{"message": "Internal server error"}`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambdad import tracing
from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.errors import FunctionNotFound, LambdadError, TooManyRequests
from lambdad.http.asgi import BodyTooLarge, Receive, Scope, Send, header, read_body, respond
from lambdad.http.routing import AlbRule, listener_rules, route
from lambdad.manifest.model import ApiTrigger, Manifest
from lambdad.payloads import apigateway
from lambdad.payloads.alb import MAX_BODY_BYTES, InvalidResponse, alb_event, alb_response, target_group_arn
from lambdad.payloads.media_types import first_accepted, is_binary
from lambdad.route_keys import RouteKey, best_route, parse_route
from lambdad.runtime.functions import ShuttingDown
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES

if TYPE_CHECKING:
    from lambdad.runtime.functions import Functions

log = logging.getLogger(__name__)

_PAGE = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n</body>\r\n</html>\r\n"
_JSON = [("content-type", "application/json")]



@functools.lru_cache(maxsize=256)
def api_id(listener: str, length: int = 10) -> str:
    """A stable id for the API a listener plays (10 characters as API Gateway's; 32 for a function URL)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    n = int.from_bytes(hashlib.sha256(listener.encode()).digest(), "big")
    return "".join(alphabet[(n >> (6 * i)) % 36] for i in range(length))


#: Where a request's X-Ray header is kept in its ASGI scope, so that the event and the invocation agree.
TRACE_KEY = "lambdad.trace"


def request_trace(scope: Scope, now: float) -> str:
    """The request's `x-amzn-trace-id` as ALB and API Gateway pass it on: the client's, or a new Root
    (stamped `now`, wall time)."""
    trace = scope.get(TRACE_KEY)
    if trace is None:
        trace = scope[TRACE_KEY] = header(scope, b"x-amzn-trace-id") or tracing.root_header(now)
    return trace


def invocation_trace(scope: Scope, function: str, now: float) -> str:
    """The `_X_AMZN_TRACE_ID` of the request's invocation of `function`: the request's trace id."""
    return tracing.for_invocation(request_trace(scope, now), function, now)


def raw_path(scope: Scope) -> str:
    """The path as the client sent it, still percent-encoded: what ALB matches its rules against and
    passes on, and what API Gateway routes on (uvicorn's `path` is already decoded)."""
    return scope.get("raw_path", b"").decode("latin-1") or scope["path"]


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass(frozen=True)
class Routes:
    manifest: Manifest
    rules: list[AlbRule]  #: ALB
    api: list[tuple[RouteKey, tuple[str, ApiTrigger]]]  #: API Gateway routes -> (function, trigger)
    url: tuple[str, ApiTrigger] | None  #: a function URL takes every request

    @property
    def rest_api(self) -> bool:
        """Every route is payload 1.0: the listener plays a REST API (an unmatched request is its 403)."""
        return bool(self.api) and all(t.rest for _, (_, t) in self.api)


def listener_routes(manifest: Manifest, listener: str) -> Routes:
    api, url = [], None
    for fn in manifest.functions.values():
        for t in fn.events:
            if isinstance(t, ApiTrigger) and t.listener == listener:
                if t.function_url:
                    url = (fn.name, t)
                else:
                    api.append((parse_route(t.route), (fn.name, t)))
    return Routes(manifest, listener_rules(manifest, listener), api, url)


class ListenerApp:
    """ASGI app for one listener. A reload calls `update`; a request in progress keeps the routes it found."""

    def __init__(self, name: str, manifest: Manifest, functions: Functions, executor: Executor,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.name = name
        self._clock = clock
        self.functions = functions
        self._executor = executor
        self.port = 0  #: the port it listens on (known once bound)
        self._routes = listener_routes(manifest, name)

    def update(self, manifest: Manifest) -> None:
        self._routes = listener_routes(manifest, self.name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        routes = self._routes
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._dispatch(scope, receive, tracked, routes)
        except Exception as e:
            if started:  # (half an answer out: nothing more to say; the server closes the connection)
                raise
            alb = routes.url is None and (not routes.api or self._alb_rule(routes, scope) is not None)
            if isinstance(e, LambdadError) and e.STATUS < 500:  # not whole: the client's, not lambdad's
                if alb:
                    return await self._page(send, 400, "400 Bad Request")
                return await respond(send, 400, _JSON, apigateway.error_body("Bad Request"))
            log.exception("listener %s failed on %s %s", self.name, scope.get("method"), scope.get("path"))
            if alb:
                return await self._page(send, 500, "500 Internal Server Error")
            await respond(send, 500, _JSON, apigateway.error_body("Internal server error"))

    @staticmethod
    def _alb_rule(routes: Routes, scope: Scope) -> AlbRule | None:
        return route(routes.rules, scope["method"], raw_path(scope), header(scope, b"host") or "")

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, routes: Routes) -> None:
        method, path = scope["method"], raw_path(scope)
        if routes.url is not None:
            fn, trigger = routes.url
            return await self._api(scope, receive, send, routes.manifest, fn, trigger, "$default", "$default", {})
        rule = self._alb_rule(routes, scope)
        if rule is not None:
            return await self._alb(scope, receive, send, routes.manifest, rule)
        try:
            decoded: str | None = apigateway.http_api_path(path)
        except apigateway.BadPath:
            decoded = None
        found = best_route(routes.api, method, lambda target: path if target[1].rest else decoded)
        if found is not None:
            key, (fn, trigger), params = found
            resource = key.path or key.key
            return await self._api(scope, receive, send, routes.manifest, fn, trigger, key.key, resource, params)
        if decoded is None and not routes.rest_api and routes.api:  # an HTTP API refuses it before routing
            await respond(send, 400, [*_JSON, ("apigw-requestid", str(uuid.uuid4()))],
                          apigateway.error_body("Bad Request"))
        elif routes.rest_api:  # REST APIs answer a path or method they do not have so, not with a 404
            await respond(send, 403, [*_JSON, ("x-amzn-requestid", str(uuid.uuid4())),
                                      ("x-amzn-errortype", "MissingAuthenticationTokenException")],
                          apigateway.error_body("Missing Authentication Token"))
        elif routes.api:
            await respond(send, 404, _JSON, apigateway.error_body("Not Found"))
        else:
            await respond(send, 404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")

    # -- API Gateway routes and function URLs ---------------------------------------------------------

    async def _api(self, scope: Scope, receive: Receive, send: Send, manifest: Manifest, fn: str,
                   trigger: ApiTrigger, route_key: str, resource: str, params: dict[str, str]) -> None:
        try:
            body = await read_body(scope, receive, apigateway.MAX_BODY_BYTES)
        except BodyTooLarge:
            return await respond(send, 413, _JSON, apigateway.error_body("Request Entity Too Large"))
        request_id = str(uuid.uuid4())
        payload = self._api_event(scope, body, manifest, trigger, request_id, route_key, resource, params)
        extra = [("apigw-requestid", request_id)] if not trigger.rest else [
            ("x-amzn-requestid", request_id)]
        if len(payload) > MAX_SYNC_PAYLOAD_BYTES:  # Lambda refuses the invocation
            self._note(fn, f"the event is {len(payload)} bytes; Lambda takes at most {MAX_SYNC_PAYLOAD_BYTES}")
            if trigger.function_url:
                return await respond(send, 413, _JSON + extra, apigateway.error_body("Request Entity Too Large"))
            return await respond(send, 500, _JSON + extra, apigateway.error_body("Internal server error"))
        trace = invocation_trace(scope, fn, self._clock.time())
        invocation = self.functions.invoke_async(fn, payload, self._executor, trace_id=trace)
        function = manifest.functions.get(fn)
        try:
            if function is not None and function.timeout_s <= trigger.timeout_s:
                result = await invocation  # the function's own timeout ends it first
            else:  # past the integration timeout the client is answered; the invocation runs on
                invocation = asyncio.ensure_future(invocation)
                result = await asyncio.wait_for(asyncio.shield(invocation), trigger.timeout_s)
        except TimeoutError:
            if isinstance(invocation, asyncio.Future):  # collected, never "exception was never retrieved"
                invocation.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._note(fn, f"504: the integration timeout ({trigger.timeout_s:g} s) passed")
            return await respond(send, 504, _JSON + extra, apigateway.error_body("Endpoint request timed out"))
        except TooManyRequests as e:
            self._note(fn, f"429: throttled ({e.reason})")
            return await respond(send, 429, _JSON + extra, apigateway.error_body("Too Many Requests"))
        except (FunctionNotFound, ShuttingDown):  # Lambda refused the invocation: 500, as API Gateway says it
            return await respond(send, 500, _JSON + extra, apigateway.error_body("Internal server error"))
        if result.function_error:
            return await self._internal_error(send, fn, f"the function failed ({result.error_type})", extra)
        try:
            if trigger.payload_format == "1.0":  # (an HTTP API decodes every base64 body, as for 2.0)
                binary = not trigger.rest or is_binary(trigger.binary_media_types,
                                                       first_accepted(header(scope, b"accept")))
                response = apigateway.v1_response(result.payload, binary)
            else:
                response = apigateway.v2_response(result.payload)
        except InvalidResponse as e:
            return await self._internal_error(send, fn, f"invalid response: {e}", extra)
        await respond(send, response.status, response.headers + extra, response.body)

    def _api_event(self, scope: Scope, body: bytes, manifest: Manifest, trigger: ApiTrigger, request_id: str,
                   route_key: str, resource: str, params: dict[str, str]) -> bytes:
        request = apigateway.Request(
            method=scope["method"], raw_path=raw_path(scope),
            raw_query=scope["query_string"].decode("latin-1"), headers=tuple(self._forwarded(scope)), body=body,
            source_ip=(scope.get("client") or ("127.0.0.1", 0))[0], protocol=f"HTTP/{scope.get('http_version', '1.1')}")
        api = apigateway.Api(account="anonymous" if trigger.function_url else manifest.account,
                             api_id=api_id(self.name, 32 if trigger.function_url else 10), request_id=request_id,
                             now=self._clock.time(), domain=header(scope, b"host") or f"127.0.0.1:{self.port}",
                             function_url=trigger.function_url)
        if trigger.payload_format == "1.0":
            return json.dumps(apigateway.v1_event(request, api, resource, params, rest=trigger.rest,
                                                  binary_media_types=trigger.binary_media_types)).encode()
        return json.dumps(apigateway.v2_event(request, api, route_key, params)).encode()

    async def _internal_error(self, send: Send, fn: str, why: str, extra: list[tuple[str, str]]) -> None:
        self._note(fn, f"502: {why}")
        await respond(send, 502, _JSON + extra, apigateway.error_body("Internal server error"))

    # -- ALB ------------------------------------------------------------------------------------------

    async def _alb(self, scope: Scope, receive: Receive, send: Send, manifest: Manifest, rule: AlbRule) -> None:
        try:
            body = await read_body(scope, receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            return await self._page(send, 413, "413 Request Entity Too Large")
        event = alb_event(
            target_group_arn=target_group_arn(manifest, self.name, rule.function),
            method=scope["method"],
            path=raw_path(scope),
            query=scope["query_string"].decode("latin-1"),
            headers=self._forwarded(scope),
            body=body,
            multi_value=rule.trigger.multi_value_headers,
        )
        trace = invocation_trace(scope, rule.function, self._clock.time())
        await self._forward(send, rule, json.dumps(event).encode(), trace)

    def _forwarded(self, scope: Scope) -> list[tuple[str, str]]:
        """The request's headers, lower-cased, with those ALB and API Gateway add."""
        headers = [(k.decode("latin-1"), _text(v)) for k, v in scope["headers"]]
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        forwarded = next((v for k, v in reversed(headers) if k == "x-forwarded-for"), None)
        drop = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
        headers = [(k, v) for k, v in headers if k not in drop]
        if not any(k == "x-amzn-trace-id" for k, _ in headers):
            headers.append(("x-amzn-trace-id", request_trace(scope, self._clock.time())))
        headers += [("x-forwarded-for", f"{forwarded}, {client}" if forwarded else client),
                    ("x-forwarded-port", str(self.port)), ("x-forwarded-proto", "http")]
        return headers

    async def _forward(self, send: Send, rule: AlbRule, payload: bytes, trace: str) -> None:
        try:
            result = await self.functions.invoke_async(rule.function, payload, self._executor, trace_id=trace)
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

    async def _bad_gateway(self, send: Send, rule: AlbRule, why: str) -> None:
        self._note(rule.function, f"502 Bad Gateway: {why}")
        await self._page(send, 502, "502 Bad Gateway")

    def _note(self, fn: str, message: str) -> None:
        self.functions.logbook.note(fn, f"listener {self.name}: {message}")

    @staticmethod
    async def _page(send: Send, status: int, title: str) -> None:
        await respond(send, status, [("content-type", "text/html")], _PAGE.format(title).encode())
