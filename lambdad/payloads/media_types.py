"""A REST API's `binaryMediaTypes`: which request bodies reach the function base64-encoded, and
which base64 responses API Gateway decodes before the client gets them.

A list entry is a media type, or a pattern with `*` standing for any run of characters (`image/*`,
`*/*`); matching ignores case and the parameters after `;`. A request body is binary when its
`Content-Type` matches; a response is decoded when the request's first `Accept` media type does
(API Gateway reads only the first one). With an empty list nothing is binary, as on AWS.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

#: `type/subtype`, each an RFC 9110 token, where `*` may stand for any run of characters.
_PATTERN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def media_type(value: str | None) -> str:
    """`Image/PNG; q=0.9` → `image/png`; "" when there is none."""
    return (value or "").split(";", 1)[0].strip().lower()


def first_accepted(accept: str | None) -> str:
    """The first media type of an `Accept` header: the only one API Gateway looks at."""
    return media_type((accept or "").split(",", 1)[0])


def is_binary(patterns: Iterable[str], value: str | None) -> bool:
    """Whether the media type of `value` (a Content-Type, or a first Accept type) is in the list."""
    kind = media_type(value)
    return bool(kind) and any(fnmatch.fnmatchcase(kind, p.lower()) for p in patterns)


def pattern_problem(pattern: object) -> str | None:
    """Why API Gateway would not take `pattern` as a binary media type, or None."""
    if not isinstance(pattern, str) or not _PATTERN.match(pattern):
        return f"{pattern!r} is not a media type: write type/subtype, such as image/png, image/* or */*"
    return None
