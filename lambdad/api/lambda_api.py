"""The Lambda Invoke API, as boto3 and the aws CLI speak it (rest-json, `/2015-03-31/functions/...`),
and the app of the whole API port.

Service errors go out the way Lambda sends them: an `x-amzn-ErrorType` header with the full error
shape name and a JSON body with `Type` and `Message`, so that botocore raises the exception class a
user's code catches against AWS. Requests are accepted whatever their signature: the API listens on
loopback unless the daemon was told otherwise, and answers only for local host names and never for a
web page (see `guard`).

One error mapper, in `LambdaApi.__call__`, turns whatever a request raises into the error document of
the protocol it spoke (Lambda's rest-json, or the JSON protocols of SQS and Kinesis on the same port,
routed by `port`): a `LambdadError` is the user's (its CODE and STATUS), anything else is lambdad's
own failure, logged once with its traceback and answered as AWS answers an internal failure (500
`ServiceException`).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lambdad import tracing
from lambdad.api import port
from lambdad.api.lambda_shapes import (
    MAX_QUERY_FIELDS,
    PREFIX,
    count_param,
    function_configuration,
    query_params,
    resolve,
)
from lambdad.api.params import Response
from lambdad.api.port import internal_failure, protocol_error
from lambdad.api.regions import RegionWarnings, signed_region
from lambdad.api.sdk_retries import DEDUP_BYTES, SdkRetries
from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.errors import (
    InvalidRequestContent,
    LambdadError,
    RecursiveInvocation,
    RequestTooLarge,
    UnknownOperation,
    UsageError,
    unavailable,
)
from lambdad.http.asgi import BodyTooLarge, Receive, Scope, Send, header, read_body, respond
from lambdad.http.guard import Guard
from lambdad.ids import new_request_id
from lambdad.manifest.model import Function, Manifest, RecursiveLoop
from lambdad.runtime.functions import ShuttingDown, check_payload
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES, InvokeResult, decode_client_context

if TYPE_CHECKING:
    from lambdad.api.kinesis import KinesisApi
    from lambdad.api.sqs_json import SqsApi
    from lambdad.runtime.functions import Functions
    from lambdad.services.asyncinvoke import AsyncInvocations

log = logging.getLogger(__name__)

#: The largest body read at all (the async limit, 1 MB, is checked once the type is known).
MAX_BODY = MAX_SYNC_PAYLOAD_BYTES
#: ListFunctions returns at most this many per page, as Lambda does.
PAGE = 50


class LambdaApi:
    """ASGI app. `manifest` is swapped by a reload; `functions` and `invocations` live as long as the daemon."""

    def __init__(
        self,
        manifest: Manifest,
        functions: Functions,
        invocations: AsyncInvocations,
        executor: Executor,
        python_version: Callable[[str], str | None] = lambda name: None,
        sqs: SqsApi | None = None,
        kinesis: KinesisApi | None = None,
        guard: Guard | None = None,
        clock: Clock = SYSTEM_CLOCK,
        dedup_bytes: int = DEDUP_BYTES,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.regions = RegionWarnings(warn)
        self.sqs = sqs  #: the SQS API, served on the same port (requests with `X-Amz-Target: AmazonSQS.*`)
        self.kinesis = kinesis  #: and the Kinesis API (`X-Amz-Target: Kinesis_20131202.*`)
        self.functions = functions
        self.invocations = invocations
        self._executor = executor
        self._python_version = python_version
        self.guard = guard or Guard.of(manifest.api.host, allow_origins=getattr(manifest.api, "allow_origins", ()))
        self._clock = clock
        self.retries = SdkRetries(clock, dedup_bytes)

    @property
    def dedup_bytes(self) -> int:
        """At most this many bytes of answers are kept for SDK retries."""
        return self.retries.dedup_bytes

    @dedup_bytes.setter
    def dedup_bytes(self, value: int) -> None:
        self.retries.dedup_bytes = value

    @property
    def cached_bytes(self) -> int:
        return self.retries.cached_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        protocol = port.protocol_of(scope, self.sqs, self.kinesis)
        try:
            self.guard.check(scope)
            self._check_region(scope)
            status, headers, body = await self._handle(scope, receive, protocol)
        except BodyTooLarge as e:
            error = e if protocol != port.LAMBDA else RequestTooLarge(
                f"Request must be smaller than {MAX_BODY} bytes for the InvokeFunction operation")
            status, headers, body = protocol_error(protocol, error)
        except LambdadError as e:
            status, headers, body = protocol_error(protocol, e)
        except RecursionError:  # a body nested deeper than json goes, wherever it was parsed (SQS, Kinesis...)
            log.warning("the API refused %s %s: its body is nested too deeply", scope.get("method"), scope.get("path"))
            status, headers, body = protocol_error(protocol, InvalidRequestContent(
                "Could not parse request body into json: it is nested too deeply"))
        except Exception:
            log.exception("the API failed on %s %s", scope.get("method"), scope.get("path"))
            status, headers, body = protocol_error(protocol, internal_failure())
        if not any(k.lower() == "x-amzn-requestid" for k, _ in headers):
            headers.append(("x-amzn-RequestId", new_request_id()))
        try:
            await respond(send, status, headers, body)
        except UnicodeEncodeError:  # a header that HTTP cannot carry: lambdad's mistake, answered as one
            log.exception("the API's answer to %s %s could not be sent", scope.get("method"), scope.get("path"))
            await respond(send, *protocol_error(protocol, internal_failure()))

    def _check_region(self, scope: Scope) -> None:
        query = scope.get("query_string") or b""
        credential = None
        if b"X-Amz-Credential=" in query:
            try:
                fields = parse_qs(query.decode("latin-1"), max_num_fields=MAX_QUERY_FIELDS)
            except ValueError:  # too many fields: the handler refuses the request with its own error
                fields = {}
            credential = fields.get("X-Amz-Credential", [None])[0]
        self.regions.check(signed_region(header(scope, b"authorization"), credential), self.manifest.region)

    async def _handle(self, scope: Scope, receive: Receive, protocol: str) -> Response:
        method, path = scope["method"], scope["path"]
        if protocol != port.LAMBDA:
            return await port.serve(protocol, scope, receive, self.sqs, self.kinesis)
        query = query_params(scope["query_string"])
        if not path.startswith(PREFIX):
            raise _unknown(method, path)
        rest = path[len(PREFIX):].strip("/")
        parts = rest.split("/") if rest else []
        manifest = self.manifest
        if method == "GET" and not parts:
            return self._list(manifest, query)
        if method == "GET" and len(parts) == 1:
            fn = resolve(parts[0], query.get("Qualifier"), manifest)
            return self._json(self._get_function(manifest, fn))
        if method == "GET" and len(parts) == 2 and parts[1] == "configuration":
            fn = resolve(parts[0], query.get("Qualifier"), manifest)
            return self._json(function_configuration(manifest, fn, self._python_version(fn.name)))
        if method == "POST" and len(parts) == 2 and parts[1] == "invocations":
            return await self._invoke(scope, receive, manifest, parts[0], query.get("Qualifier"))
        raise _unknown(method, path)

    @staticmethod
    def _json(doc: dict, status: int = 200) -> Response:
        return status, [("content-type", "application/json")], json.dumps(doc).encode()

    def _list(self, manifest: Manifest, query: dict[str, str]) -> Response:
        names = list(manifest.functions)
        start = count_param(query, "Marker", 0, 10**9) or 0
        size = min(PAGE, count_param(query, "MaxItems", 1, 10_000) or PAGE)
        page = names[start:start + size]
        doc: dict = {"Functions": [
            {k: v for k, v in function_configuration(manifest, manifest.functions[n], self._python_version(n)).items()
             if k not in ("State", "LastUpdateStatus")}
            for n in page
        ]}
        if start + len(page) < len(names):
            doc["NextMarker"] = str(start + len(page))
        return self._json(doc)

    def _get_function(self, manifest: Manifest, fn: Function) -> dict:
        doc: dict = {
            "Configuration": function_configuration(manifest, fn, self._python_version(fn.name)),
            "Code": {"RepositoryType": "Local", "Location": fn.code.absolute().as_uri()},
            "Tags": {},
        }
        if fn.reserved_concurrency is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": fn.reserved_concurrency}
        return doc

    # -- Invoke ---------------------------------------------------------------------------------------

    async def _invoke(
        self, scope: Scope, receive: Receive, manifest: Manifest, name: str, qualifier: str | None
    ) -> Response:
        fn = resolve(name, qualifier, manifest)
        kind = header(scope, b"x-amz-invocation-type") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise UsageError(f"Invalid InvocationType {kind!r}: use RequestResponse, Event or DryRun")
        client_context = decode_client_context(header(scope, b"x-amz-client-context"))
        payload = await read_body(scope, receive, MAX_BODY)
        call_id = header(scope, b"amz-sdk-invocation-id")
        if call_id is None:
            return await self._run(fn, kind, payload, scope, client_context, manifest)
        return await self.retries.answer(
            call_id, fn.name, lambda: self._run(fn, kind, payload, scope, client_context, manifest))

    async def _run(
        self, fn: Function, kind: str, payload: bytes, scope: Scope, client_context: str | None, manifest: Manifest
    ) -> Response:
        import asyncio

        loop = asyncio.get_running_loop()
        incoming_trace = header(scope, b"x-amzn-trace-id")  # the caller's trace (an SDK in a handler sends its own)
        if kind == "Event":
            try:
                request_id = await loop.run_in_executor(self._executor, functools.partial(
                    self.invocations.enqueue, fn.name, payload, trace=incoming_trace))
            except sqlite3.Error as e:  # a full disk, say: the event was not accepted, and the client must know
                log.error("an event for %s could not be stored: %s", fn.name, e)
                raise unavailable(e) from None
            return 202, [("x-amzn-RequestId", request_id)], b""
        payload = check_payload(payload)
        if kind == "DryRun":
            return 204, [], b""
        if fn.recursive_loop is RecursiveLoop.terminate and tracing.continues_loop(incoming_trace, fn.name):
            self.functions.logbook.note(fn.name, f"invoke: stopped a recursive loop: this call would invoke the "
                                                 f"function more than {tracing.MAX_CHAIN} times in one chain of events")
            raise RecursiveInvocation()
        request_id = new_request_id()
        arn = manifest.function_arn(fn.name, "$LATEST" if self._qualified(scope) else None)
        try:
            result: InvokeResult = await self.functions.invoke_async(
                fn.name, payload, self._executor, request_id=request_id, invoked_arn=arn, client_context=client_context,
                trace_id=tracing.for_invocation(incoming_trace, fn.name, self._clock.time()))
        except ShuttingDown:
            raise LambdadError("lambdad is stopping") from None
        headers = [("content-type", "application/json"), ("x-amzn-RequestId", request_id),
                   ("X-Amz-Executed-Version", "$LATEST")]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if header(scope, b"x-amz-log-type") == "Tail":
            headers.append(("X-Amz-Log-Result", base64.b64encode(result.log_tail).decode()))
        return 200, headers, result.payload

    @staticmethod
    def _qualified(scope: Scope) -> bool:
        return b"Qualifier=" in scope["query_string"] or scope["path"].endswith(":$LATEST/invocations")


def _unknown(method: str, path: str) -> LambdadError:
    return UnknownOperation(f"lambdad does not implement {method} {path}")
