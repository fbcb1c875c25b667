"""X-Ray trace headers: `Root=1-{8 hex epoch}-{24 hex};Parent={16 hex};Sampled=0;Lineage=...`.

Lambda gives every invocation one in `_X_AMZN_TRACE_ID`; the AWS SDKs send it on as the
`X-Amzn-Trace-Id` header of the calls a handler makes (botocore's recursion detection), SQS keeps it
as a message's `AWSTraceHeader`, and the `Lineage` field counts how often each function ran in one
chain of events, which is how Lambda stops recursive loops. Pure functions: time and randomness
are parameters.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import unquote

#: Lambda stops the invocation that would be a function's 17th in one chain ("more than 16 times").
MAX_CHAIN = 16
#: The version field lambdad writes in front of each Lineage entry (`1:fe460cdd:3`, as Lambda's).
LINEAGE_VERSION = "1"

_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_PARENT = re.compile(r"[0-9a-f]{16}")
_HASH = re.compile(r"[0-9a-f]{8}")

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class TraceHeader:
    root: str  #: `1-5759e988-bd862e3fe1be46a994272793`
    parent: str | None = None
    sampled: str | None = None  #: "0", "1" or "?"; None when the header had none
    lineage: tuple[tuple[str, int], ...] = ()  #: (8-hex hash of a function, invocations before this one)
    extra: tuple[tuple[str, str], ...] = ()  #: other fields (`Self=`), kept in order

    def count(self, function: str) -> int:
        """How many invocations of `function` came before in this chain (0 if none)."""
        key = function_hash(function)
        return next((n for h, n in self.lineage if h == key), 0)


def new_root(now: float, rand: Random = os.urandom) -> str:
    """A new trace id: version 1, the epoch seconds in 8 hex digits, 96 random bits."""
    return f"1-{int(now) & 0xFFFFFFFF:08x}-{rand(12).hex()}"


def root_header(now: float, rand: Random = os.urandom) -> str:
    """The header ALB and API Gateway add to a request that came without one."""
    return f"Root={new_root(now, rand)}"


@functools.lru_cache(maxsize=4096)
def function_hash(function: str) -> str:
    return hashlib.sha256(function.encode()).hexdigest()[:8]


def parse(text: str | None) -> TraceHeader | None:
    """The header's fields, or None without a valid `Root` (the header is then ignored, as X-Ray does)."""
    if not text:
        return None
    if "%" in text:  # botocore percent-encodes what it sends (a Lineage of several entries has `|`)
        text = unquote(text)
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name in ("Root", "Parent", "Sampled", "Lineage"):
            fields.setdefault(name, value.strip())
        else:
            extra.append((name, value.strip()))
    root = fields.get("Root", "").lower()
    if not _ROOT.fullmatch(root):
        return None
    parent = fields.get("Parent", "").lower()
    return TraceHeader(root, parent if _PARENT.fullmatch(parent) else None, fields.get("Sampled") or None,
                       _parse_lineage(fields.get("Lineage", "")), tuple(extra))


def _parse_lineage(text: str) -> tuple[tuple[str, int], ...]:
    """`1:a87bd80c:1|68fd508a:5`: entries of an optional version, a hash and a count; bad ones dropped."""
    entries = []
    for entry in text.split("|"):
        parts = entry.strip().split(":")
        if len(parts) not in (2, 3) or not _HASH.fullmatch(parts[-2].lower()) or not parts[-1].isdigit():
            continue
        entries.append((parts[-2].lower(), min(int(parts[-1]), 1_000_000)))
    return tuple(entries)


def format_header(header: TraceHeader) -> str:
    parts = [f"Root={header.root}"]
    if header.parent:
        parts.append(f"Parent={header.parent}")
    if header.sampled is not None:
        parts.append(f"Sampled={header.sampled}")
    if header.lineage:
        parts.append("Lineage=" + "|".join(f"{LINEAGE_VERSION}:{h}:{n}" for h, n in header.lineage))
    parts += [f"{k}={v}" for k, v in header.extra]
    return ";".join(parts)


def for_invocation(incoming: str | None, function: str, now: float, rand: Random = os.urandom) -> str:
    """The `_X_AMZN_TRACE_ID` of an invocation of `function` caused by a request or event that
    carried `incoming` (None: nothing did): its trace id (or a new one), a new Parent (the
    invocation's own segment), `Sampled=0` unless the caller decided, and the Lineage with this
    function's count raised by one when the chain already passed through it."""
    parsed = parse(incoming)
    key = function_hash(function)
    if parsed is None:  # (every invocation that nothing traced: the short way, on the hot path)
        return f"Root={new_root(now, rand)};Parent={rand(8).hex()};Sampled=0;Lineage={LINEAGE_VERSION}:{key}:0"
    seen = any(h == key for h, _ in parsed.lineage)
    lineage = tuple((h, n + 1 if h == key else n) for h, n in parsed.lineage) if seen else (*parsed.lineage, (key, 0))
    return format_header(replace(parsed, parent=rand(8).hex(), sampled=parsed.sampled or "0", lineage=lineage))


def chain_count(trace: str | None, function: str) -> int:
    """How many invocations of `function` came before the one `trace` belongs to, in its chain."""
    parsed = parse(trace)
    return 0 if parsed is None else parsed.count(function)


def is_recursive_loop(trace: str | None, function: str) -> bool:
    """The invocation that `trace` belongs to would be `function`'s 17th (or later) in its chain."""
    return chain_count(trace, function) >= MAX_CHAIN


def root_of(trace: str | None) -> str | None:
    parsed = parse(trace)
    return None if parsed is None else parsed.root


def longest_chain(traces: list[str | None], function: str) -> str | None:
    """Of the traces of the invocations that wrote one bucket file, the one whose chain passed through
    `function` most often (the first on a tie; None if none has a valid header): the file's event
    continues it, so a loop is seen whoever else wrote the same file meanwhile."""
    valid = [t for t in traces if parse(t) is not None]
    return max(valid, key=lambda t: chain_count(t, function), default=None)


def for_batch(traces: list[str | None], function: str, now: float, rand: Random = os.urandom) -> str:
    """The `_X_AMZN_TRACE_ID` of an invocation of `function` with a batch of messages carrying
    `traces` (their `AWSTraceHeader`s): a new trace, as Lambda starts for an SQS-triggered
    invocation, with the Lineage of the message whose chain passed through `function` least often (a
    message without a header: none). A legitimate message's follow-ups so never inherit a looping
    neighbour's count, and a real loop, all of whose messages carry the chain, is still seen; each
    looping message is stopped on its own trace (`continues_loop`)."""
    parsed = [parse(t) for t in traces] or [None]
    shortest = min(parsed, key=lambda h: 0 if h is None else h.count(function))
    lineage = () if shortest is None else shortest.lineage
    sampled = None if shortest is None else shortest.sampled
    return for_invocation(format_header(TraceHeader(new_root(now, rand), sampled=sampled, lineage=lineage)),
                          function, now, rand)


def continues_loop(incoming: str | None, function: str) -> bool:
    """An invocation of `function` continuing `incoming` would be stopped as a recursive loop."""
    parsed = parse(incoming)
    key = function_hash(function)
    return parsed is not None and any(h == key and n + 1 >= MAX_CHAIN for h, n in parsed.lineage)
