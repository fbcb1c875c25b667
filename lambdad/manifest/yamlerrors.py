"""YAML syntax errors said where the fix goes.

PyYAML reports two places: where it began reading the construct that failed (its context mark: the
`{` that is never closed) and where it gave up (its problem mark: often lines later). The place to
fix is usually the first, so both are reported, each naming the other, in words a person who does
not know the YAML grammar can act on. Tabs, which YAML forbids for indentation and which an editor
does not show, are named as tabs.
"""

from __future__ import annotations

import re

import yaml

from lambdad.manifest.problems import Mark, Problem

_PREFIX = "YAML syntax error: "
_TABS = "tabs are not allowed for indentation in YAML: use spaces"


def _at(mark: yaml.Mark | None) -> Mark | None:
    return Mark(mark.line + 1, mark.column + 1) if mark is not None else None


def _char(text: str, mark: Mark | None) -> str:
    """The character at `mark` ('' past the end): what the problem or the context points at."""
    if mark is None:
        return ""
    lines = text.split("\n")
    if mark.line > len(lines):
        return ""
    line = lines[mark.line - 1]
    return line[mark.col - 1] if mark.col - 1 < len(line) else ""


def _where(mark: Mark) -> str:
    return f"line {mark.line}, column {mark.col}"


def _opened(context: str, char: str) -> str | None:
    """What the context mark opened, for "this ... is never closed" (None: not a bracket or quote)."""
    if context == "while parsing a flow mapping":
        return "'{'"
    if context == "while parsing a flow sequence":
        return "'['"
    if context == "while scanning a quoted scalar":
        return f"quote {char!r}" if char in "\"'" and char else "quote"
    return None


def _rest(text: str, mark: Mark | None) -> str:
    """The text of the line from `mark` on."""
    if mark is None:
        return ""
    lines = text.split("\n")
    return lines[mark.line - 1][mark.col - 1 :] if mark.line <= len(lines) else ""


def _problem_text(problem: str, char: str, rest: str = "") -> str:
    if "undefined alias" in problem and "'" not in problem:  # libyaml does not name it
        name = re.match(r"\*[^\s,\[\]{}]+", rest)
        return f"found undefined alias {name.group(0)!r}" if name else problem
    if "mapping values are not allowed" in problem:
        return f"{problem}: a ': ' inside a plain value (quote the value), or a line indented too far"
    if char == "\t":
        if "violates indentation" in problem:
            return f"found a tab character that breaks the indentation: {_TABS}"
        return f"found a tab character where a key or value should start: {_TABS}"
    if "cannot start any token" in problem and char:
        return f"found {char!r}, which cannot start a plain value here (quote the value)"
    return problem


#: What PyYAML was reading (its context), as a person would call it.
_NOUNS = {
    "while parsing a block mapping": "mapping",
    "while parsing a block collection": "list",
    "while parsing a block node": "value",
    "while parsing a flow node": "value",
    "while scanning a simple key": "key",
    "while scanning a plain scalar": "value",
    "while scanning a block scalar": "block text",
}
#: Said where a block mapping or list ends early: the usual cause is one line indented differently.
_INDENT_HINT = "check the indentation: the keys of one mapping, and the items of one list, line up"


def syntax_problems(error: yaml.MarkedYAMLError, text: str, file: str) -> list[Problem]:
    """One or two located problems for a PyYAML scanner, parser or composer error."""
    problem_at, context_at = _at(error.problem_mark), _at(error.context_mark)
    problem_char = _char(text, problem_at)
    problem = _problem_text(error.problem or "", problem_char, _rest(text, problem_at))
    context = error.context or ""
    if problem_at is None or context_at is None or context_at == problem_at or not context or problem_char == "\t":
        mark = problem_at or context_at
        said = problem if problem_at is not None or not context else " ".join(x for x in (context, problem) if x)
        return [Problem(file, mark, (), _PREFIX + said)]
    if context.startswith("found duplicate anchor"):
        anchor = (_rest(text, problem_at).split() or ["&"])[0]
        return [Problem(file, problem_at, (), f"{_PREFIX}duplicate anchor {anchor!r} (first at {_where(context_at)})")]
    opened = _opened(context, _char(text, context_at))
    if opened is not None:
        return [
            Problem(file, context_at, (), f"{_PREFIX}this {opened} is never closed (reading stopped at "
                                          f"{_where(problem_at)})"),
            Problem(file, problem_at, (), f"{_PREFIX}{problem} (the {opened} at {_where(context_at)} is never "
                                          "closed)"),
        ]
    noun = _NOUNS.get(context, context.removeprefix("while ").replace("parsing ", "").replace("scanning ", ""))
    hint = f"; {_INDENT_HINT}" if noun in ("mapping", "list") else ""
    return [
        Problem(file, context_at, (), f"{_PREFIX}the {noun} that starts here cannot be read to its end (reading "
                                      f"stopped at {_where(problem_at)}{hint})"),
        Problem(file, problem_at, (), f"{_PREFIX}{problem} (in the {noun} that starts at {_where(context_at)})"),
    ]
