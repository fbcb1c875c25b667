"""Typed readers of a JSON request's parameters, for the AWS JSON protocols on the API port.

A request body is whatever a client sent: any parameter may be a number, a list, null or missing.
Reading each one through a reader that knows its type and range turns every such request into
the protocol's own error (SQS and Kinesis name them differently: `ParamErrors`), raised before
anything is written, instead of a TypeError deep in an operation and a 500.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lambdad.errors import ProtocolError

log = logging.getLogger(__name__)


class ParamErrors(Protocol):
    """How one protocol words a parameter it refuses."""

    def wrong_type(self, name: str, value: object, expected: str) -> ProtocolError: ...

    def missing(self, name: str) -> ProtocolError: ...

    def invalid(self, name: str, value: object, reason: str) -> ProtocolError: ...


#: A lone surrogate: JSON's `\ud800` escapes allow one in a string, UTF-8 (and SQLite) do not.
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: JSON, cut short."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def json_object(body: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object (an empty body is `{}`), or None if it is not one."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # (not UTF-8 is a ValueError; nesting deeper than Python's stack, the other)
        return None
    return doc if isinstance(doc, dict) else None


class Params:
    """The parameters of one request, or of one entry of a batch (`prefix` names it in errors).
    A JSON null is an absent parameter, as AWS reads it."""

    def __init__(self, doc: dict[str, Any], errors: ParamErrors, prefix: str = "") -> None:
        self.doc = doc
        self.errors = errors
        self.prefix = prefix

    def _get(self, name: str, required: bool) -> Any:
        value = self.doc.get(name)
        if value is None and required:
            raise self.errors.missing(self.prefix + name)
        return value

    def has(self, name: str) -> bool:
        return self.doc.get(name) is not None

    def text(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str) or _SURROGATE.search(value):
            raise self.errors.wrong_type(self.prefix + name, value, "a string (of Unicode characters)")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str, lo: int, hi: int, required: bool = False, default: int | None = None,
                reason: str | None = None) -> int | None:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.errors.wrong_type(self.prefix + name, value, "an integer")
        if not lo <= value <= hi:
            raise self.errors.invalid(self.prefix + name, value, reason or f"Must be between {lo} and {hi}.")
        return value

    def strings(self, name: str) -> list[str]:
        """A list of strings (absent: empty)."""
        value = self._get(name, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and not _SURROGATE.search(v) for v in value):
            raise self.errors.wrong_type(self.prefix + name, value, "a list of strings")
        return value

    def objects(self, name: str) -> list[dict[str, Any]]:
        """A list of JSON objects (absent: empty)."""
        value = self._get(name, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.errors.wrong_type(self.prefix + name, value, "a list of objects")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        """A JSON object (absent: empty)."""
        value = self._get(name, False)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.errors.wrong_type(self.prefix + name, value, "an object")
        return value

    def entry(self, doc: dict[str, Any], prefix: str) -> Params:
        return Params(doc, self.errors, self.prefix + prefix)


Response = tuple[int, list[tuple[str, str]], bytes]


async def answer_json(
    service: str,
    operation: str,
    body: bytes,
    handler: Callable[[Params], Awaitable[Any]] | None,
    errors: ParamErrors,
    codes: tuple[str, str],
    content_type: str,
    error_response: Callable[[ProtocolError], Response],
) -> Response:
    """The one error mapper of a JSON protocol (SQS, Kinesis): whatever happens inside `handler`,
    the answer is that protocol's document. `codes` names its errors for a body that is not an
    object and an unknown operation. A store that cannot write answers 503, and nothing of the
    request was committed (the write was rolled back)."""
    not_object, unknown = codes
    try:
        request = json_object(body)
        if request is None:
            raise ProtocolError(not_object, "The request body is not a JSON object.")
        if handler is None:
            raise ProtocolError(unknown, f"lambdad does not implement {operation}")
        result = await handler(Params(request, errors))
    except ProtocolError as e:
        return error_response(e)
    except sqlite3.Error as e:  # (rolled back: nothing of the request was kept)
        log.error("%s %s: the store could not take it: %s", service, operation, e)
        return error_response(ProtocolError("ServiceUnavailable", f"The store could not take the request ({e}); "
                                            "nothing was written. Please try again.", 503))
    except Exception:
        log.exception("%s %s failed", service, operation)
        return error_response(ProtocolError("InternalFailure", "The request processing has failed because of an "
                                            "unknown error, exception or failure.", 500))
    return 200, [("content-type", content_type)], json.dumps(result).encode()
