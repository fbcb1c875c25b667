"""The Lambda Invoke API, as boto3 and the aws CLI speak it (rest-json, `/2015-03-31/functions/...`).

Service errors go out the way Lambda sends them: an `x-amzn-ErrorType` header with the full error
shape name and a JSON body with `Type` and `Message`, so that botocore raises the exception class a
user's code catches against AWS. Requests are accepted whatever their signature: the API listens on
loopback unless the daemon was told otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lambdad.errors import (
    FunctionNotFound,
    LambdadError,
    RequestTooLarge,
    TooManyRequests,
    UnknownOperation,
    UsageError,
)
from lambdad.http.asgi import BodyTooLarge, Receive, Scope, Send, header, read_body, respond
from lambdad.manifest.checks import handler_module_file
from lambdad.manifest.model import Function, Manifest, TargetKind
from lambdad.runtime.functions import ShuttingDown, check_payload
from lambdad.runtime.invocation import MAX_SYNC_PAYLOAD_BYTES, InvokeResult, decode_client_context, new_request_id

if TYPE_CHECKING:
    import asyncio

    from lambdad.dispatcher import Dispatcher
    from lambdad.http.kinesis_api import KinesisApi
    from lambdad.http.sqs_api import SqsApi
    from lambdad.runtime.functions import Functions

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


def runtime_name(python_version: str | None) -> str:
    if python_version is None:
        return f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return "python" + ".".join(python_version.split(".")[:2])


def function_configuration(manifest: Manifest, fn: Function, python_version: str | None) -> dict:
    """GetFunctionConfiguration's answer, from the manifest: enough for `aws lambda get-function`."""
    module = handler_module_file(fn.code, fn.handler)
    code = module.read_bytes() if module else b""
    stamp = max(manifest.file.stat().st_mtime, module.stat().st_mtime if module else 0)
    config = {
        "FunctionName": fn.name,
        "FunctionArn": manifest.function_arn(fn.name),
        "Runtime": runtime_name(python_version),
        "Role": f"arn:aws:iam::{manifest.account}:role/lambdad",
        "Handler": fn.handler,
        "CodeSize": len(code),
        "Description": fn.description,
        "Timeout": int(fn.timeout_s),
        "MemorySize": fn.memory_mb,
        "LastModified": datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "CodeSha256": base64.b64encode(hashlib.sha256(code).digest()).decode(),
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


def error_response(error: LambdadError) -> tuple[int, list[tuple[str, str]], bytes]:
    body: dict[str, object] = {"Type": "User", "Message": str(error)}
    if isinstance(error, FunctionNotFound):
        body["Message"] = f"Function not found: {error.name}"
    if isinstance(error, TooManyRequests):
        body = {"Reason": error.reason, "Type": "User", "message": str(error)}
    headers = [("x-amzn-ErrorType", error.CODE), ("content-type", "application/json")]
    return error.STATUS, headers, json.dumps(body).encode()


# -- the app ------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """One SDK call (by its amz-sdk-invocation-id): a retry of it waits for, and gets, the same answer."""

    function: str
    answer: asyncio.Future = field(repr=False)
    at: float = 0.0


class LambdaApi:
    """ASGI app. `manifest` is swapped by a reload; `functions` and `dispatcher` live as long as the daemon."""

    def __init__(
        self,
        manifest: Manifest,
        functions: Functions,
        dispatcher: Dispatcher,
        executor: Executor,
        python_version: Callable[[str], str | None] = lambda name: None,
        sqs: SqsApi | None = None,
        kinesis: KinesisApi | None = None,
    ) -> None:
        self.manifest = manifest
        self.sqs = sqs  #: the SQS API, served on the same port (requests with `X-Amz-Target: AmazonSQS.*`)
        self.kinesis = kinesis  #: and the Kinesis API (`X-Amz-Target: Kinesis_20131202.*`)
        self.functions = functions
        self.dispatcher = dispatcher
        self._executor = executor
        self._python_version = python_version
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            status, headers, body = await self._handle(scope, receive)
        except LambdadError as e:
            status, headers, body = error_response(e)
        except BodyTooLarge:
            status, headers, body = error_response(RequestTooLarge(
                f"Request must be smaller than {MAX_BODY} bytes for the InvokeFunction operation"))
        if not any(k == "x-amzn-RequestId" for k, _ in headers):
            headers.append(("x-amzn-RequestId", new_request_id()))
        await respond(send, status, headers, body)

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[str, str]], bytes]:
        method, path = scope["method"], scope["path"]
        target = header(scope, b"x-amz-target") or ""
        if method == "POST" and target.startswith("AmazonSQS.") and self.sqs is not None:
            body = await read_body(scope, receive, SQS_MAX_REQUEST)
            return await self.sqs.handle(target.removeprefix("AmazonSQS."), body, header(scope, b"host") or "")
        if method == "POST" and target.startswith("Kinesis_20131202.") and self.kinesis is not None:
            body = await read_body(scope, receive, SQS_MAX_REQUEST)
            return await self.kinesis.handle(target.removeprefix("Kinesis_20131202."), body)
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
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
    def _json(doc: dict, status: int = 200) -> tuple[int, list[tuple[str, str]], bytes]:
        return status, [("content-type", "application/json")], json.dumps(doc).encode()

    def _list(self, manifest: Manifest, query: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        names = list(manifest.functions)
        start = int(query["Marker"]) if query.get("Marker", "").isdigit() else 0
        size = min(PAGE, int(query["MaxItems"])) if query.get("MaxItems", "").isdigit() else PAGE
        page = names[start:start + max(1, size)]
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
    ) -> tuple[int, list[tuple[str, str]], bytes]:
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
        call = _Call(fn.name, asyncio.get_running_loop().create_future(), time.monotonic())
        self._calls[call_id] = call
        try:
            answer = await self._run(fn, kind, payload, scope, client_context, manifest)
        except BaseException as e:
            del self._calls[call_id]  # refused (throttled, invalid...): a retry is a new attempt
            call.answer.set_exception(e)
            call.answer.exception()  # (retrieved: no "never retrieved" warning when nobody waits)
            raise
        call.answer.set_result(answer)
        return answer

    def _expire(self) -> None:
        now = time.monotonic()
        while self._calls:
            oldest = next(iter(self._calls.values()))
            if len(self._calls) <= DEDUP_MAX and now - oldest.at < DEDUP_S:
                break
            if not oldest.answer.done():
                break
            self._calls.popitem(last=False)

    async def _run(
        self, fn: Function, kind: str, payload: bytes, scope: Scope, client_context: str | None, manifest: Manifest
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        import asyncio

        loop = asyncio.get_running_loop()
        if kind == "Event":
            request_id = await loop.run_in_executor(self._executor, self.dispatcher.submit, fn.name, payload)
            return 202, [("x-amzn-RequestId", request_id)], b""
        payload = check_payload(payload)
        if kind == "DryRun":
            return 204, [], b""
        request_id = new_request_id()
        arn = manifest.function_arn(fn.name, "$LATEST" if self._qualified(scope) else None)
        try:
            result: InvokeResult = await self.functions.invoke_async(
                fn.name, payload, self._executor, request_id=request_id, invoked_arn=arn, client_context=client_context)
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
