"""The registry of sample sources, and `--set`: what each AWS source sends a function, ready to edit.

Sources lambdad also triggers (triggers.py) are built by the very builders those triggers use, so a
sample is byte for byte the shape the daemon sends. The rest (callers.py) are shaped after AWS's own
samples and documentation. Every builder takes `now` and draws fresh ids, so two samples
never share a request id, and a handler that deduplicates on ids sees two distinct events.

`SAMPLES` is a plain dict: another module adds a source with one line, `register(Sample(...))`.
Builders that need manifest, store or listener code import it when they run, so that `lambdad event
list` does not pay for loading the manifest schema.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdad.errors import UsageError

#: Where samples say they happen: the manifest's defaults (lambdad.manifest.model), spelled out here so
#: that listing samples loads no manifest code.
REGION = "us-east-1"
ACCOUNT = "123456789012"

Params = Mapping[str, str]
Builder = Callable[[Params, float], dict[str, Any]]


class SampleError(UsageError):
    """A sample cannot be made as asked: unknown source, bad `--set`, bad parameter value."""


@dataclass(frozen=True)
class Param:
    default: str
    help: str


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    params: Mapping[str, Param]
    build: Builder  #: (params with every default filled in, now) -> payload

    def defaults(self) -> dict[str, str]:
        return {name: p.default for name, p in self.params.items()}


#: Every source `lambdad event list` shows, by name.
SAMPLES: dict[str, Sample] = {}


def register(sample: Sample) -> Sample:
    """Add a source; a second one of the same name is a programming error, not a silent override."""
    if sample.name in SAMPLES:
        raise ValueError(f"sample {sample.name!r} is already registered")
    SAMPLES[sample.name] = sample
    return sample


def sample(name: str, description: str, **params: tuple[str, str]) -> Callable[[Builder], Builder]:
    """Register the decorated builder; each keyword is a parameter: `name=(default, help)`."""

    def add(build: Builder) -> Builder:
        register(Sample(name, description, {k: Param(*v) for k, v in params.items()}, build))
        return build

    return add


# --- generating, and --set -----------------------------------------------------------------------


def find(name: str) -> Sample:
    if name in SAMPLES:
        return SAMPLES[name]
    close = difflib.get_close_matches(name, SAMPLES, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "`lambdad event list` shows them all"
    raise SampleError(f"unknown event source {name!r} ({hint})")


def generate(name: str, settings: Sequence[str], now: float) -> dict[str, Any]:
    """The payload of source `name` at time `now`, with each `NAME=VALUE` of `settings` applied.

    A NAME that is one of the source's parameters sets it before the payload is built (so the builder
    derives everything that depends on it, such as an ARN from a queue name); any other NAME is a dotted
    path into the built payload, set afterwards, with VALUE parsed as JSON when it is JSON.

    Raises:
        SampleError: unknown source, a setting without `=`, a bad parameter value or a bad path.
    """
    found = find(name)
    params, paths = found.defaults(), []
    for text in settings:
        key, value = parse_setting(text)
        if key in found.params:
            params[key] = value
        else:
            paths.append((key, value))
    payload = found.build(params, now)
    for path, value in paths:
        set_path(payload, path, json_value(value))
    return payload


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SampleError(f"--set {text!r}: expected NAME=VALUE, a parameter or a dotted path such as "
                          "Records.0.s3.object.size=10")
    return name.strip(), value


def json_value(text: str) -> Any:
    """`10` is a number and `{"a": 1}` an object, but `hello` is the string it reads as. So are `NaN` and
    `1e400`: Python's `json` takes them, but the payload it printed could not be read back."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        return text


def _not_json(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set `a.b.0.c` in `doc`. The last key is created if missing; every step before it must exist,
    so that a typo (`Records.0.s4...`) is an error rather than a new branch nobody reads."""
    parts = path.split(".")
    if not all(parts):
        raise SampleError(f"--set {path}: a path is keys and list indexes joined by single dots")
    node = doc
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, path, ".".join(parts[:depth]))
    _assign(node, parts[-1], value, path, ".".join(parts[:-1]))


def _child(node: Any, part: str, path: str, where: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            close = difflib.get_close_matches(part, list(node), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SampleError(f"--set {path}: {_at(where)} has no key {part!r}{hint}")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, path, where)]
    raise SampleError(f"--set {path}: {_at(where)} is {_kind(node)}, not an object or a list")


def _assign(node: Any, part: str, value: Any, path: str, where: str) -> None:
    if isinstance(node, dict):
        node[part] = value
    elif isinstance(node, list):
        node[_index(node, part, path, where)] = value
    else:
        raise SampleError(f"--set {path}: {_at(where)} is {_kind(node)}, not an object or a list")


def _index(items: list, part: str, path: str, where: str) -> int:
    if not (part.isascii() and part.isdigit()):
        raise SampleError(f"--set {path}: {_at(where)} is a list; {part!r} is not an index")
    if int(part) >= len(items):
        raise SampleError(f"--set {path}: {_at(where)} has {len(items)} item(s); index {part} is out of range")
    return int(part)


def _at(where: str) -> str:
    return where or "the payload"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else "a string"


# --- parameter values ----------------------------------------------------------------------------


def int_param(params: Params, name: str, low: int = 0, high: int | None = None) -> int:
    try:
        value = int(params[name].strip())
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SampleError(f"--set {name}: {params[name]!r} is not a whole number {span}")
    return value


def bool_param(params: Params, name: str) -> bool:
    text = params[name].strip().lower()
    if text not in ("true", "false"):
        raise SampleError(f"--set {name}: {params[name]!r} is not true or false")
    return text == "true"


def choice_param(params: Params, name: str, choices: Sequence[str]) -> str:
    value = params[name].strip().upper()
    if value not in choices:
        raise SampleError(f"--set {name}: {params[name]!r} is not one of {', '.join(choices)}")
    return value


def time_param(params: Params, name: str, now: float) -> float:
    """An ISO-8601 time (UTC unless it says otherwise), or `now` when empty."""
    text = params[name].strip()
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SampleError(f"--set {name}: {text!r} is not an ISO-8601 time such as 2024-01-01T12:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()






