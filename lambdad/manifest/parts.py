"""Independent parts of a manifest, so that one broken part does not hide the problems of the others.

The model can only be built from data the schema accepts. Rather than stop at the first schema
error (and make the user fix the manifest in waves), the parts the schema (or YAML) found broken are
left out, the rest is built and checked, and a reference to a part that was left out is not reported
as missing: it is there, it is only broken.

A part is one named entry of a section (`functions.resize`, `queues.jobs`), or one of the top-level
settings nothing else is built from. A problem anywhere else (the root, a whole section, `defaults`,
which every function is built from, `api`, whose port the listeners are checked against) leaves
nothing independent to check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lambdad.manifest.problems import DocPath

#: Sections whose entries are built each on its own (and referred to by name across the manifest).
NAMED_SECTIONS = frozenset({"functions", "queues", "buckets", "listeners", "streams"})
#: Top-level settings that are read only for themselves: the model falls back to its default.
OWN_SETTINGS = frozenset({"version", "region", "account", "durability"})

#: A broken part, as (section, name) for a named entry or (setting,) for a top-level setting.
Part = tuple[str, ...]


def part_of(path: DocPath) -> Part | None:
    """The independent part a problem at `path` lies in, or None when it touches everything."""
    if len(path) >= 2 and path[0] in NAMED_SECTIONS and isinstance(path[1], str):
        return (path[0], path[1])
    if len(path) >= 1 and path[0] in OWN_SETTINGS:
        return (str(path[0]),)
    return None


def broken_parts(paths: Iterable[DocPath]) -> set[Part] | None:
    """The parts the problems at `paths` lie in, or None when one of them cannot be set apart."""
    parts: set[Part] = set()
    for path in paths:
        part = part_of(path)
        if part is None:
            return None
        parts.add(part)
    return parts


def without(data: Mapping[str, Any], parts: set[Part]) -> dict[str, Any]:
    """A copy of the document with `parts` left out (the input is not changed)."""
    out = dict(data)
    for part in parts:
        if len(part) == 1:
            out.pop(part[0], None)
            continue
        section = out.get(part[0])
        if isinstance(section, Mapping):
            out[part[0]] = {k: v for k, v in section.items() if k != part[1]}
    return out
