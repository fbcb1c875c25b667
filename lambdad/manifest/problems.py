"""One reported manifest problem, and how problems are located and printed.

Every check (YAML, schema, semantics) produces `Problem`s rather than raising, so a single run can
report all of them at once, each as `FILE:LINE:COL: dotted.path: message`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lambdad.shown import SHOWN_CHARS, one_line, shown

#: A location inside the manifest document: keys and list indexes from the root.
DocPath = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Mark:
    """1-based line and column, as editors show them."""

    line: int
    col: int


@dataclass(frozen=True)
class Problem:
    file: str
    mark: Mark | None
    path: DocPath
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.mark.line}:{self.mark.col}" if self.mark else self.file
        dotted = dotted_path(self.path)
        line = f"{where}: {dotted}: {self.message}" if dotted else f"{where}: {self.message}"
        return one_line(line)

    def sort_key(self) -> tuple[int, int, str]:
        return (self.mark.line, self.mark.col, self.message) if self.mark else (0, 0, self.message)


def dotted_path(path: DocPath) -> str:
    """`("functions", "resize", "events", 0, "s3")` -> `functions.resize.events[0].s3`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = shown_key(part)
            out += f".{part}" if out else part
    return out


def shown_key(key: str) -> str:
    """A mapping key as a path shows it: as written, unless it holds control characters or is long."""
    if key.isprintable() and len(key) <= SHOWN_CHARS:
        return key
    return shown(key)


class Marks:
    """Positions of every value (and of every mapping key) in the YAML document."""

    def __init__(self, values: Mapping[DocPath, Mark], keys: Mapping[DocPath, Mark]) -> None:
        self._values = values
        self._keys = keys

    def value(self, path: DocPath) -> Mark | None:
        """The mark of the value at `path`, or of its nearest existing ancestor."""
        for n in range(len(path), -1, -1):
            mark = self._values.get(path[:n])
            if mark is not None:
                return mark
        return None

    def key(self, path: DocPath) -> Mark | None:
        """The mark of the key that names `path` (falls back to the value's mark)."""
        return self._keys.get(path) or self.value(path)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """A ` (did you mean 'x'?)` suffix when one of `choices` is close to `word`, else ''."""
    close = difflib.get_close_matches(str(word), sorted({str(c) for c in choices}), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_problems(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in sorted(problems, key=Problem.sort_key))
