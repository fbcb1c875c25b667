"""One error tree for everything lambdad reports to a user.

Each class carries an exit code for the CLI (`EXIT`) and, where the error crosses the HTTP API,
the AWS error name and status it maps to (`CODE`, `STATUS`), so the mapping lives in one place.
"""

from __future__ import annotations

import sqlite3

#: Exit codes of the `lambdad` command.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  #: bad manifest, bad arguments, bad input
EXIT_INTERRUPTED = 130


class LambdadError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""

    EXIT = EXIT_ERROR
    CODE = "ServiceException"
    STATUS = 500


class UsageError(LambdadError):
    EXIT = EXIT_USAGE
    CODE = "InvalidParameterValueException"
    STATUS = 400


class ManifestError(LambdadError):
    """The manifest is invalid; `problems` holds every problem found, already formatted one per line."""

    EXIT = EXIT_USAGE

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class FunctionNotFound(LambdadError):
    EXIT = EXIT_USAGE
    CODE = "ResourceNotFoundException"
    STATUS = 404

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f" (functions: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"Function not found: {name!r}{hint}")
        self.name = name


class InvalidRequestContent(LambdadError):
    EXIT = EXIT_USAGE
    CODE = "InvalidRequestContentException"
    STATUS = 400


class UnknownOperation(LambdadError):
    """An API path or method lambdad does not implement."""

    EXIT = EXIT_USAGE
    CODE = "UnknownOperationException"
    STATUS = 404


class RequestTooLarge(LambdadError):
    EXIT = EXIT_USAGE
    CODE = "RequestEntityTooLargeException"
    STATUS = 413


class TooManyRequests(LambdadError):
    """A synchronous call found every allowed environment busy (Lambda never queues these)."""

    CODE = "TooManyRequestsException"
    STATUS = 429

    def __init__(self, reason: str, function: str = "") -> None:
        super().__init__("Rate Exceeded.")
        self.reason = reason
        self.function = function

    def describe(self) -> str:
        """For people rather than SDKs: which function, and which limit."""
        return f"TooManyRequestsException: Rate Exceeded. ({self.reason} for function {self.function!r})"


class DaemonAlreadyRunning(LambdadError):
    def __init__(self, state_dir: str, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"lambdad is already running on state folder {state_dir} ({who}); stop it first")


class ProtocolError(LambdadError):
    """A request an AWS service API on the daemon's port refuses (SQS, Kinesis): `code` is the error
    the service's protocol names, `status` its HTTP status, so each API's error mapper writes the
    document the SDK turns into the exception a user catches against AWS."""

    EXIT = EXIT_USAGE
    CODE = "InvalidParameterValue"
    STATUS = 400

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AccessDenied(LambdadError):
    """A request for a host name the API does not serve (DNS rebinding), or sent by a web page (CSRF)."""

    CODE = "AccessDeniedException"
    STATUS = 403


class RequestAborted(LambdadError):
    """The body ended short of its Content-Length, or the client went away mid-body: nothing runs or is stored."""

    CODE = "InvalidRequestContentException"
    STATUS = 400


class UnsafePath(LambdadError):
    """A write into a bucket or folder that would leave it (a `..`, a symbolic link inside it)."""

    EXIT = EXIT_USAGE
    CODE = "InvalidArgument"
    STATUS = 400


class RecursiveInvocation(LambdadError):
    """A synchronous invocation stopped as a recursive loop (Lambda's RecursiveInvocationException)."""

    CODE = "RecursiveInvocationException"
    STATUS = 400

    def __init__(self) -> None:
        super().__init__("Lambda has detected your function being invoked in a recursive loop with other AWS "
                         "resources and stopped your function's invocation.")


class StoreError(LambdadError):
    """The state folder's store cannot be opened (corrupt, or written by a newer lambdad)."""


class StoreUnavailable(StoreError, sqlite3.OperationalError):
    """A write could not be committed (a full disk, an I/O error, a lock held too long, a state
    folder that was deleted): nothing of it was kept, so the caller may try again later. Still an
    `OperationalError` for code that catches SQLite's errors; a `LambdadError` for the APIs, which
    answer with its message instead of a traceback."""


def unavailable(error: sqlite3.Error) -> StoreUnavailable:
    """The one error a failed write becomes, wherever it surfaced (the store, or an API that caught
    SQLite's own error): here, below the store, so that a face maps it without importing the store."""
    if isinstance(error, StoreUnavailable):
        return error
    return StoreUnavailable(f"the store cannot be written: {error}")
