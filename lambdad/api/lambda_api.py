"""The Lambda Invoke API, as boto3 and the aws CLI speak it (rest-json, `/2015-03-31/functions/...`).

Service errors go out the way Lambda sends them: an `x-amzn-ErrorType` header with the full error
shape name and a JSON body with `Type` and `Message`, so that botocore raises the exception class a
user's code catches against AWS. Requests are accepted whatever their signature: the API listens on
loopback unless the daemon was told otherwise, and answers only for local host names and never for a
web page (see `guard`).

One error mapper, in `LambdaApi.__call__`, turns whatever a request raises into the error document of
the protocol it spoke (Lambda's rest-json, or the JSON protocols of SQS and Kinesis on the same port):
a `LambdadError` is the user's (its CODE and STATUS), anything else is lambdad's own failure, logged
once with its traceback and answered as AWS answers an internal failure (500 `ServiceException`).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import sqlite3
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lambdad import tracing
from lambdad.api import sqs_query
from lambdad.api.params import shown
from lambdad.clock import SYSTEM_CLOCK, Clock
from lambdad.errors import (
    FunctionNotFound,
    InvalidRequestContent,
    LambdadError,
    RecursiveInvocation,
    RequestTooLarge,
    TooManyRequests,
    UnknownOperation,
    UsageError,
    unavailable,
)
from lambdad.http.asgi import BodyTooLarge, Receive, Scope, Send, header, read_body, respond
from lambdad.http.guard import Guard
from lambdad.manifest.model import Function, Manifest, RecursiveLoop, TargetKind
from lambdad.runtime.code import code_file, handler_module_file
from lambdad.runtime.functions import ShuttingDown, check_payload
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES, InvokeResult, decode_client_context, new_request_id

if TYPE_CHECKING:
    import asyncio

    from lambdad.api.kinesis import KinesisApi
    from lambdad.api.sqs_json import SqsApi
    from lambdad.runtime.functions import Functions
    from lambdad.services.asyncinvoke import AsyncInvocations

log = logging.getLogger(__name__)

PREFIX = "/2015-03-31/functions"
#: The largest body read at all (the async limit, 1 MB, is checked once the type is known).
MAX_BODY = MAX_SYNC_PAYLOAD_BYTES
#: A SendMessageBatch of ten 1 MiB messages (or a PutRecords of 5 MiB), with room for the JSON around them.
SQS_MAX_REQUEST = 12 * 1024 * 1024
#: ListFunctions returns at most this many per page, as Lambda does.
PAGE = 50
#: How long the outcome of a call is kept for an SDK that sends the same call again.
DEDUP_S = 15 * 60
DEDUP_MAX = 10_000
#: ... and at most this many bytes of their answers, oldest out first (a retry of one let go runs again).
DEDUP_BYTES = 64 * 1024 * 1024
#: A query string has at most this many fields (Lambda's operations take two).
MAX_QUERY_FIELDS = 100

Response = tuple[int, list[tuple[str, str]], bytes]


# -- pure parts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    qualifier: str | None


def parse_function_name(text: str, manifest: Manifest) -> Target:
    """`name`, `name:qualifier`, `ACCOUNT:function:name[:q]` or a full ARN → the function and qualifier.

    Raises:
        FunctionNotFound: another account or region, or not a function ARN.
    """
    parts = text.split(":")
    if text.startswith("arn:"):
        if len(parts) not in (7, 8) or parts[1] != "aws" or parts[2] != "lambda" or parts[5] != "function":
            raise FunctionNotFound(text)
        if (parts[3], parts[4]) != (manifest.region, manifest.account):
            raise FunctionNotFound(text)
        return Target(parts[6], parts[7] if len(parts) == 8 else None)
    if len(parts) in (3, 4) and parts[1] == "function":
        if parts[0] != manifest.account:
            raise FunctionNotFound(text)
        return Target(parts[2], parts[3] if len(parts) == 4 else None)
    if len(parts) in (1, 2):
        return Target(parts[0], parts[1] if len(parts) == 2 else None)
    raise FunctionNotFound(text)


def resolve(text: str, query_qualifier: str | None, manifest: Manifest) -> Function:
    target = parse_function_name(text, manifest)
    if target.qualifier and query_qualifier and target.qualifier != query_qualifier:
        raise UsageError("The derived qualifier from the function name does not match the specified qualifier.")
    qualifier = target.qualifier or query_qualifier
    fn = manifest.functions.get(target.name)
    if fn is None or qualifier not in (None, "$LATEST"):
        arn = manifest.function_arn(target.name, qualifier)
        raise FunctionNotFound(arn)
    return fn


def query_params(raw: bytes) -> dict[str, str]:
    """The query string's fields (the last of each name), percent-decoded as UTF-8.

    Raises:
        UsageError: not UTF-8, a `%` escape that is not one, or too many fields.
    """
    try:
        pairs = parse_qs(raw.decode(), errors="strict", max_num_fields=MAX_QUERY_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise UsageError("The query string is not valid: it must be UTF-8, percent-encoded, with at most "
                         f"{MAX_QUERY_FIELDS} fields.") from None
    return {k: v[-1] for k, v in pairs.items()}


def count_param(query: dict[str, str], name: str, low: int, high: int) -> int | None:
    """A whole-number parameter between `low` and `high` (checked before int(): no 4,300-digit numbers).

    Raises:
        UsageError: anything else.
    """
    text = query.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(high)) and low <= int(text) <= high):
        raise UsageError(f"1 validation error detected: Value {text[:20]!r} at '{name}' failed to satisfy "
                         f"constraint: Member must be a whole number between {low} and {high}")
    return int(text)


_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/,\s]+)/")


def signed_region(authorization: str | None, query_credential: str | None = None) -> str | None:
    """The region a SigV4 request was signed for: the third field of its credential scope
    (`Credential=AKID/20240101/eu-west-2/lambda/aws4_request`), from the Authorization header or a
    presigned URL's X-Amz-Credential; None when the request carries no SigV4 signature."""
    if authorization:
        found = _CREDENTIAL_SCOPE.search(authorization)
        if found:
            return found.group(1)
    if query_credential:
        parts = query_credential.split("/")
        if len(parts) >= 3 and parts[1].isdigit():
            return parts[2]
    return None


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
#: Regions warned about at most (each once): a client cannot fill the console by inventing regions.
MAX_REGION_WARNINGS = 32


class RegionWarnings:
    """AWS refuses a call signed for another region than the endpoint's; lambdad has one region and
    serves the call, but says so once per region seen (not per call: the CLI may send many)."""

    def __init__(self, warn: Callable[[str], None] | None) -> None:
        self._warn = warn
        self._seen: set[tuple[str, str]] = set()

    def check(self, region: str | None, manifest_region: str) -> None:
        if self._warn is None or region is None or region == manifest_region:
            return
        if (region, manifest_region) in self._seen or len(self._seen) >= MAX_REGION_WARNINGS:
            return
        if not _REGION.match(region):  # not a region (a hand-made header): nothing to say about it
            return
        self._seen.add((region, manifest_region))
        self._warn(f"a call signed for region {region} is served as the manifest's region {manifest_region}: "
                   f"lambdad has one region, and ARNs in its answers say {manifest_region}; AWS would refuse "
                   "the call (set region: in the manifest, or the client's region, to match)")


def runtime_name(python_version: str | None) -> str:
    if python_version is None:
        return f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return "python" + ".".join(python_version.split(".")[:2])


def function_configuration(manifest: Manifest, fn: Function, python_version: str | None) -> dict:
    """GetFunctionConfiguration's answer, from the manifest: enough for `aws lambda get-function`."""
    code = code_file(handler_module_file(fn.code, fn.handler))
    stamp = max(manifest.file.stat().st_mtime, code.mtime)
    config = {
        "FunctionName": fn.name,
        "FunctionArn": manifest.function_arn(fn.name),
        "Runtime": runtime_name(python_version),
        "Role": f"arn:aws:iam::{manifest.account}:role/lambdad",
        "Handler": fn.handler,
        "CodeSize": code.size,
        "Description": fn.description,
        "Timeout": int(fn.timeout_s),
        "MemorySize": fn.memory_mb,
        "LastModified": datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "CodeSha256": code.sha256,
        "Version": "$LATEST",
        "Environment": {"Variables": dict(fn.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{fn!r}")),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.name}"},
    }
    dlq = fn.async_config.dead_letter
    if dlq is not None and dlq.kind is TargetKind.queue:
        config["DeadLetterConfig"] = {"TargetArn": f"arn:aws:sqs:{manifest.region}:{manifest.account}:{dlq.name}"}
    return config


def error_response(error: LambdadError) -> Response:
    body: dict[str, object] = {"Type": "User" if error.STATUS < 500 else "Service", "Message": str(error)}
    if isinstance(error, FunctionNotFound):
        body["Message"] = f"Function not found: {error.name}"
    if isinstance(error, TooManyRequests):
        body = {"Reason": error.reason, "Type": "User", "message": str(error)}
    headers = [("x-amzn-ErrorType", error.CODE), ("content-type", "application/json")]
    return error.STATUS, headers, json.dumps(body).encode()


#: The error codes of the JSON protocols (SQS, Kinesis) for the errors raised around their dispatch.
_JSON_CODES = {
    "sqs": {"AccessDeniedException": "AccessDenied", "ServiceException": "InternalFailure",
            "RequestEntityTooLargeException": "RequestEntityTooLarge",
            "InvalidRequestContentException": "InvalidParameterValue"},
    "kinesis": {"ServiceException": "InternalFailure", "RequestEntityTooLargeException": "ValidationException",
                "InvalidRequestContentException": "SerializationException"},
}


def protocol_error(protocol: str, error: LambdadError) -> Response:
    """`error` in the shape the client's protocol reads: Lambda's rest-json, SQS's or Kinesis's JSON."""
    if protocol == "lambda":
        return error_response(error)
    if protocol == "sqs-query":
        return sqs_query.xml_response(None, *protocol_error("sqs", error), new_request_id())
    code = _JSON_CODES[protocol].get(error.CODE, error.CODE)
    if protocol == "sqs":
        body = {"__type": f"com.amazonaws.sqs#{code}", "message": str(error)}
        fault = "Receiver" if error.STATUS >= 500 else "Sender"
        headers = [("content-type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{code};{fault}")]
    else:
        body = {"__type": code, "message": str(error)}
        headers = [("content-type", "application/x-amz-json-1.1")]
    return error.STATUS, headers, json.dumps(body).encode()


def internal_failure() -> LambdadError:
    return LambdadError("An internal error occurred in lambdad; its console shows what went wrong.")


# -- the app ------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One SDK call (by its amz-sdk-invocation-id): a retry of it waits for, and gets, the same answer."""

    function: str
    answer: asyncio.Future = field(repr=False)
    at: float = 0.0
    size: int = 0  #: the answer's bytes, once it is known


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
        self.dedup_bytes = dedup_bytes
        self.cached_bytes = 0  #: the bytes of answers kept for SDK retries (at most `dedup_bytes`)
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    def _protocol(self, scope: Scope) -> str:
        target = header(scope, b"x-amz-target") or ""
        if scope["method"] == "POST" and target.startswith("AmazonSQS.") and self.sqs is not None:
            return "sqs"
        if scope["method"] == "POST" and target.startswith("Kinesis_20131202.") and self.kinesis is not None:
            return "kinesis"
        form = (header(scope, b"content-type") or "").startswith("application/x-www-form-urlencoded")
        if scope["method"] == "POST" and not target and form and not scope["path"].startswith(PREFIX) \
                and self.sqs is not None:  # (curl sends an Invoke's body as a form unless told otherwise)
            return "sqs-query"  # SQS's older protocol (the AWS CLI v2 before 2.13 sends it)
        return "lambda"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        protocol = self._protocol(scope)
        try:
            self.guard.check(scope)
            self._check_region(scope)
            status, headers, body = await self._handle(scope, receive, protocol)
        except BodyTooLarge as e:
            error = e if protocol != "lambda" else RequestTooLarge(
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
        target = header(scope, b"x-amz-target") or ""
        if protocol == "sqs" and self.sqs is not None:
            body = await read_body(scope, receive, SQS_MAX_REQUEST)
            return await self.sqs.handle(target.removeprefix("AmazonSQS."), body, header(scope, b"host") or "",
                                         header(scope, b"x-amzn-trace-id"))
        if protocol == "sqs-query" and self.sqs is not None:
            body = await read_body(scope, receive, SQS_MAX_REQUEST)
            return await self._sqs_query(body, header(scope, b"host") or "", header(scope, b"x-amzn-trace-id"))
        if protocol == "kinesis" and self.kinesis is not None:
            body = await read_body(scope, receive, SQS_MAX_REQUEST)
            return await self.kinesis.handle(target.removeprefix("Kinesis_20131202."), body)
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

    async def _sqs_query(self, body: bytes, host: str, trace_header: str | None) -> Response:
        """A query-protocol request, answered by the SQS JSON operations and translated both ways."""
        assert self.sqs is not None
        request_id = new_request_id()
        try:
            action, doc = sqs_query.parse_form(body)
        except sqs_query.QueryError as e:
            return self._query_error(400, "MalformedQueryString", str(e), request_id)
        if not action:
            return self._query_error(400, "MissingAction", "The request is missing an action or a required parameter.",
                                     request_id)
        code = sqs_query.unknown_action(action)
        if code is not None:
            return self._query_error(400, code, f"The action {shown(action)} is not valid for this endpoint.",
                                     request_id)
        answer = await self.sqs.handle(action, json.dumps(doc).encode(), host, trace_header)
        return sqs_query.xml_response(action, *answer, request_id)

    @staticmethod
    def _query_error(status: int, code: str, message: str, request_id: str) -> Response:
        return status, [("content-type", "text/xml"), ("x-amzn-RequestId", request_id)], \
            sqs_query.error_document(code, message, request_id)

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
        import asyncio  # (here: asyncio costs 20 ms of start-up, and the HTTP thread imports it anyway)

        fn = resolve(name, qualifier, manifest)
        kind = header(scope, b"x-amz-invocation-type") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise UsageError(f"Invalid InvocationType {kind!r}: use RequestResponse, Event or DryRun")
        client_context = decode_client_context(header(scope, b"x-amz-client-context"))
        payload = await read_body(scope, receive, MAX_BODY)
        call_id = header(scope, b"amz-sdk-invocation-id")
        if call_id is None:
            return await self._run(fn, kind, payload, scope, client_context, manifest)
        self._expire()
        earlier = self._calls.get(call_id)
        if earlier is not None and earlier.function == fn.name:
            return await asyncio.shield(earlier.answer)  # the SDK sent it again: same run, same answer
        if earlier is not None:  # the same id for another function: this call takes it over
            self._drop(call_id)
        call = _Call(fn.name, asyncio.get_running_loop().create_future(), self._clock.monotonic())
        self._calls[call_id] = call
        try:
            answer = await self._run(fn, kind, payload, scope, client_context, manifest)
        except BaseException as e:
            if self._calls.get(call_id) is call:
                self._drop(call_id)  # refused (throttled, invalid...): a retry is a new attempt
            call.answer.set_exception(e)
            call.answer.exception()  # (retrieved: no "never retrieved" warning when nobody waits)
            raise
        call.answer.set_result(answer)
        if self._calls.get(call_id) is call:
            call.size = len(answer[2]) + sum(len(k) + len(v) for k, v in answer[1])
            self.cached_bytes += call.size
            self._expire()
        return answer

    def _expire(self) -> None:
        """Let go of answers older than DEDUP_S, and of the oldest past DEDUP_MAX calls or `dedup_bytes`.
        A call still running stays (its retries wait for it) and takes no bytes yet."""
        now = self._clock.monotonic()
        count, cached, done = len(self._calls), self.cached_bytes, []
        for call_id, call in self._calls.items():
            if count <= DEDUP_MAX and cached <= self.dedup_bytes and now - call.at < DEDUP_S:
                break
            if call.answer.done():
                done.append(call_id)
                count, cached = count - 1, cached - call.size
        for call_id in done:
            self._drop(call_id)

    def _drop(self, call_id: str) -> None:
        call = self._calls.pop(call_id)
        self.cached_bytes -= call.size

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
