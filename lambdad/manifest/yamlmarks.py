"""Safe YAML loading that remembers where every value came from.

PyYAML's constructed data forgets line numbers, so this walks the composed node graph itself:
it records the mark of every value and key, expands `${VAR}` / `${VAR:-default}` in scalars,
reports duplicate keys (which PyYAML silently overwrites), and never constructs arbitrary
objects (only the safe loader's tags are known).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from lambdad.manifest.problems import DocPath, Mark, Marks, Problem
from lambdad.manifest.yamlerrors import syntax_problems
from lambdad.shown import shown

#: Mappings and sequences may carry only the plain tags; anything else would construct objects.
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: `${NAME}` or `${NAME:-default}`; `$${` escapes a literal `${`.
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Expansion:
    """Result of expanding one scalar: the text, and the names that were not set."""

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.missing: list[str] = []
        self.changed = False

        def sub(m: re.Match[str]) -> str:
            self.changed = True
            if m.group(0) == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            self.missing.append(name)
            return ""

        self.text = _VAR.sub(sub, text) if "${" in text else text


#: Aliases let a small file expand to billions of values ("billion laughs"); no manifest needs this many.
MAX_VALUES = 100_000
#: Nesting deeper than this is refused (a manifest needs about 8 levels; a schedule's input a few more):
#: walking, validating and serialising recurse once per level.
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooBig(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    def __init__(self, loader: yaml.SafeLoader, file: str, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.file = file
        self.env = env
        self.values: dict[DocPath, Mark] = {}
        self.keys: dict[DocPath, Mark] = {}
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._count = 0

    def problem(self, node: yaml.Node, path: DocPath, message: str) -> None:
        self.problems.append(Problem(self.file, _mark(node), path, message))

    def walk(self, node: yaml.Node, path: DocPath) -> Any:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _TooBig(node)
        self.values[path] = _mark(node)
        if id(node) in self._active:
            self.problem(node, path, "recursive YAML alias")
            return None
        if len(self._active) >= MAX_DEPTH and isinstance(node, yaml.CollectionNode):
            self.problem(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
                self.problem(node, path, f"YAML tag {node.tag!r} is not allowed")
                return None
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        own: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "mapping keys must be plain strings")
                continue
            if key_node.tag == _MERGE_TAG:
                # `<<: *anchor` (or a list of them), merged here rather than by PyYAML's flatten_mapping,
                # which raises instead of reporting a bad merge, and whose merged pairs this walk would
                # take for duplicates of the mapping's own keys. The mapping's own keys win.
                for key, value in self._merged(value_node, path).items():
                    if key not in own:
                        out[key] = value
                continue
            # The key's source text, so `on:` or `1:` stay strings instead of becoming bool/int.
            key = str(key_node.value)
            child = (*path, key)
            if key in own:
                first = self.keys[child]
                self.problem(key_node, child, f"duplicate key {shown(key)} (first at line {first.line}, "
                                              f"column {first.col})")
            own.add(key)
            self.keys[child] = _mark(key_node)
            out[key] = self.walk(value_node, child)
        return out

    def _merged(self, node: yaml.Node, path: DocPath) -> dict[str, Any]:
        """What `<<: node` brings in: a mapping, or a list of them (the earlier ones win, as in YAML)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: dict[str, Any] = {}
        own_mark = self.values.get(path)
        seen: set[int] = set()
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problem(source, path, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            if id(source) in seen:  # `<<: [*a, *a]`: once is enough (merges of merges stay linear)
                continue
            seen.add(id(source))
            merged = self.walk(source, path)
            for key, value in (merged or {}).items():
                out.setdefault(key, value)
        if own_mark is not None:
            self.values[path] = own_mark
        return out

    def _scalar(self, node: yaml.ScalarNode, path: DocPath) -> Any:
        exp = Expansion(node.value, self.env)
        for name in exp.missing:
            self.problem(node, path, f"environment variable {name!r} is not set (use ${{{name}:-default}})")
        if exp.missing:
            return node.value  # keep the text, so the schema does not report the same line again
        if exp.changed:
            if node.style:  # quoted: stays a string
                return exp.text
            tag = self.loader.resolve(yaml.ScalarNode, exp.text, (True, False))
            node = yaml.ScalarNode(tag, exp.text, node.start_mark, node.end_mark)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            self.problem(node, path, str(e.problem))
        except (ValueError, OverflowError) as e:  # 2024-02-30, a 5000-digit integer, `!!int x`
            kind = node.tag.rsplit(":", 1)[-1]
            why = "too many digits" if "integer string conversion" in str(e) else str(e)
            self.problem(node, path, f"{shown(node.value)} cannot be read as a YAML {kind}: {why}")
        return None


def _position_mark(text: str, position: int, in_bytes: bool = False) -> Mark:
    """The line and column of an offset into `text` (libyaml counts its offsets in UTF-8 bytes)."""
    data = text.encode("utf-8", "replace") if in_bytes else text
    start = data.rfind(b"\n" if in_bytes else "\n", 0, position) + 1
    before = data[start:position]
    column = len(before.decode("utf-8", "replace")) if isinstance(before, bytes) else len(before)
    return Mark(data.count(b"\n" if in_bytes else "\n", 0, position) + 1, column + 1)


def load_yaml(text: str, file: str, env: Mapping[str, str]) -> tuple[Any, Marks, list[Problem]]:
    """Parse `text`; return the data, the marks and every problem found (syntax errors stop early)."""
    try:
        loader = _Loader(text)
    except UnicodeError as e:  # lone surrogates: not from a UTF-8 file, but text may come from elsewhere
        return None, Marks({}, {}), [Problem(file, _position_mark(text, e.start), (), "the manifest is not "
                                             "valid Unicode text")]
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as e:  # a control character: located by its offset, not by a mark
        what = f"unacceptable character {shown(chr(e.character))}: {e.reason}" if isinstance(e.character, int) \
            else e.reason
        mark = _position_mark(text, e.position, in_bytes=_Loader is not yaml.SafeLoader)
        return None, Marks({}, {}), [Problem(file, mark, (), f"YAML error: {what}")]
    except yaml.MarkedYAMLError as e:
        return None, Marks({}, {}), syntax_problems(e, text, file)
    except yaml.YAMLError as e:
        return None, Marks({}, {}), [Problem(file, None, (), f"YAML error: {e}")]
    except RecursionError:  # the pure-Python composer recurses per level (libyaml stops at 1000)
        return None, Marks({}, {}), [Problem(file, None, (), "the manifest is nested too deeply")]
    try:
        if node is None:
            return None, Marks({}, {}), []
        walker = _Walker(loader, file, env)
        try:
            data = walker.walk(node, ())
        except _TooBig as e:
            message = f"the manifest expands to more than {MAX_VALUES} values (nested YAML aliases?)"
            return None, Marks({}, {}), [Problem(file, _mark(e.node), (), message)]
        except RecursionError:  # MAX_DEPTH should make this impossible; a reload must not die of it anyway
            return None, Marks({}, {}), [Problem(file, None, (), "the manifest is nested too deeply")]
        return data, Marks(walker.values, walker.keys), walker.problems
    finally:
        loader.dispose()
