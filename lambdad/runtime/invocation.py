"""Values that describe one invocation and its result, and the log lines Lambda writes around it."""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdad.errors import UsageError

#: Version reported in START lines, context and responses; lambdad runs the manifest's code as $LATEST.
VERSION = "$LATEST"
#: Lambda's synchronous request and response limits.
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024


class Outcome(enum.StrEnum):
    success = "success"
    error = "error"  #: the handler raised, or the runtime reported an error; the environment lives on
    init_error = "init_error"  #: the handler could not be loaded; the environment is discarded
    timeout = "timeout"
    crashed = "crashed"  #: the runtime process exited (Runtime.ExitError)
    out_of_memory = "out_of_memory"

    @property
    def keeps_environment(self) -> bool:
        return self in (Outcome.success, Outcome.error)


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int


@dataclass(frozen=True)
class InvokeRequest:
    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None  #: JSON text, already decoded from base64
    identity: str | None = None  #: JSON text
    trace_id: str | None = None
    #: Told each path the handler opens for writing (or renames, links or copies to) as it happens, and
    #: when (wall clock; None: now).
    on_write: Callable[..., None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    outcome: Outcome
    payload: bytes  #: the handler's response, or Lambda's error document
    error_type: str | None = None
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int = 0
    log_tail: bytes = b""

    @property
    def function_error(self) -> str | None:
        """The `X-Amz-Function-Error` value: Lambda reports every failure kind as Unhandled."""
        return None if self.outcome is Outcome.success else "Unhandled"

    def error_message(self) -> str:
        if self.outcome is Outcome.success:
            return ""
        try:
            return str(json.loads(self.payload).get("errorMessage", ""))
        except (ValueError, AttributeError):
            return ""


def runtime_error(error_type: str, request_id: str, detail: str) -> bytes:
    """The error document Lambda's platform (not the runtime) returns: timeouts, exits, out of memory."""
    return json.dumps({"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {detail}"}).encode()


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: {VERSION}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    outcome: Outcome,
    error_type: str | None,
    duration_ms: float,
    init_ms: float | None,
    memory_mb: int,
    max_memory_mb: int,
) -> str:
    """Lambda's REPORT line: tab-separated fields and a trailing tab."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if outcome is Outcome.timeout:
        line += "Status: timeout\t"
    elif outcome in (Outcome.crashed, Outcome.out_of_memory, Outcome.init_error):
        line += f"Status: error\tError Type: {error_type}\t"
    return line



def decode_client_context(text: str | None) -> str | None:
    """The base64 JSON of a client context (`X-Amz-Client-Context`), as the JSON text the runtime
    hands to `context.client_context`.

    Raises:
        UsageError: not base64 of a JSON object.
    """
    if not text:
        return None
    try:
        decoded = base64.b64decode(text, validate=True).decode()
        json.loads(decoded)
    except (binascii.Error, ValueError, RecursionError):
        raise UsageError("Client context must be a valid Base64-encoded JSON object.") from None
    return decoded
