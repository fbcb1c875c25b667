"""The Lambda API's pure parts: a request's function name and query read, and the documents
GetFunction and errors answer with. No I/O beyond the handler file's stat and hash."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from lambdad.api.params import Response
from lambdad.errors import FunctionNotFound, LambdadError, TooManyRequests, UsageError
from lambdad.manifest.model import Function, Manifest, TargetKind
from lambdad.runtime.code import code_file, handler_module_file

PREFIX = "/2015-03-31/functions"
#: A query string has at most this many fields (Lambda's operations take two).
MAX_QUERY_FIELDS = 100


@dataclass(frozen=True)
class FunctionRef:
    """A function named in a request (by name, partial or full ARN), with the qualifier it carried."""

    name: str
    qualifier: str | None


def parse_function_name(text: str, manifest: Manifest) -> FunctionRef:
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
        return FunctionRef(parts[6], parts[7] if len(parts) == 8 else None)
    if len(parts) in (3, 4) and parts[1] == "function":
        if parts[0] != manifest.account:
            raise FunctionNotFound(text)
        return FunctionRef(parts[2], parts[3] if len(parts) == 4 else None)
    if len(parts) in (1, 2):
        return FunctionRef(parts[0], parts[1] if len(parts) == 2 else None)
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


