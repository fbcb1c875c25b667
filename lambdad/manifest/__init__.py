"""Load, validate and model the manifest: YAML with marks -> JSON Schema -> model -> cross-field checks.

The cross-field checks are the ones registered in `lambdad.manifest.checks`: the manifest's own here,
each feature's from above (`lambdad.validation`), since this layer imports no feature.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from lambdad.errors import ManifestError
from lambdad.manifest.build import Builder
from lambdad.manifest.checks import missing_message, registered, run_checks
from lambdad.manifest.model import Function, Manifest
from lambdad.manifest.parts import broken_parts, without
from lambdad.manifest.problems import Problem, format_problems
from lambdad.manifest.schema import schema_problems
from lambdad.manifest.yamlmarks import load_yaml

__all__ = ["Function", "Manifest", "ManifestError", "find_manifest", "load_manifest", "parse_manifest"]

#: Where `lambdad` looks for a manifest when no `-f` is given, in order.
DEFAULT_LOCATIONS = ("lambdad.yaml", "config/lambdad.yaml")


def find_manifest(explicit: str | None, cwd: Path | None = None) -> Path:
    """`-f FILE`, else ./lambdad.yaml, else ./config/lambdad.yaml."""
    cwd = cwd or Path.cwd()
    if explicit:
        path = cwd / explicit
        if path.is_dir():
            raise ManifestError([f"{explicit}: is a folder, not a manifest"])
        if not path.exists():
            raise ManifestError([f"{explicit}: manifest not found"])
        return path  # anything else that is there: load_manifest says what is wrong with it
    for candidate in DEFAULT_LOCATIONS:
        if (cwd / candidate).is_file():
            return cwd / candidate
    raise ManifestError([f"no manifest found: looked for {' and '.join(DEFAULT_LOCATIONS)}; use -f FILE"])


def parse_manifest(
    text: str, file: Path, env: Mapping[str, str] | None = None
) -> tuple[Manifest | None, list[Problem]]:
    """Validate manifest text; return the model (None when invalid) and every problem found."""
    shown = _display_name(file)
    data, marks, problems = load_yaml(text, shown, os.environ if env is None else env)
    if problems and data is None:
        return None, problems
    if data is None:
        return None, [Problem(shown, None, (), "the manifest is empty")]
    # A value YAML could not read is reported once, as such: not again as the wrong type.
    unreadable = {p.path for p in problems}
    problems += [p for p in schema_problems(data, marks, shown) if p.path not in unreadable]
    # The parts found broken so far are left out; the others are still built and checked, so that
    # one run reports everything (a part that is left out is not reported as missing where used).
    broken = broken_parts(p.path for p in problems)
    if broken is None:
        return None, problems
    if broken:
        data = without(data, broken)
        if any(len(p.path) > 1 for p in schema_problems(data, marks, shown)):
            return None, problems
    builder = Builder(data, marks, file.absolute())
    manifest = builder.build()
    problems += [Problem(shown, p.mark, p.path, p.message) for p in builder.problems]
    for finding in run_checks(manifest):
        if finding.refers_to in broken:
            continue
        message = finding.message
        if finding.refers_to is not None:  # the parts left out are still known names
            kind, name = finding.refers_to
            left_out = [part[1] for part in broken if part[0] == kind]
            if left_out:
                message = missing_message(kind.removesuffix("s"), name, [*finding.known, *left_out])
        mark = marks.key(finding.where) if finding.on_key else marks.value(finding.where)
        problems.append(Problem(shown, mark, finding.where, message))
    if problems:
        return None, problems
    warnings = [str(Problem(shown, marks.value(f.where), f.where, f.message))
                for f in run_checks(manifest, registered(warning=True))]
    return replace(manifest, warnings=tuple(warnings)), problems


def load_manifest(path: Path, env: Mapping[str, str] | None = None) -> Manifest:
    """Read and validate the manifest at `path`.

    Raises:
        ManifestError: listing every problem, one `FILE:LINE:COL: path: message` per line.
    """
    text = read_manifest_text(path)
    manifest, problems = parse_manifest(text, path, env)
    if manifest is None:
        raise ManifestError(format_problems(problems).splitlines())
    return replace(manifest, source=text)


#: A manifest is a few kilobytes; a file this big is something else (and would take long to parse).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def read_manifest_text(path: Path) -> str:
    """The file's text, or a ManifestError saying in one line why it cannot be a manifest.

    Whatever is at `path` (a folder, a FIFO that would block a reload forever, a huge or binary
    file) ends in that one line, never in another exception.
    """
    shown = _display_name(path)

    def refuse(why: str) -> ManifestError:
        return ManifestError([f"{shown}: cannot read manifest: {why}"])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise refuse(e.strerror or str(e)) from None
    except ValueError as e:  # a NUL byte in the name
        raise refuse(str(e)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise refuse("it is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("it is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise refuse(e.strerror or str(e)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_MANIFEST_BYTES:
        raise refuse(f"it is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ManifestError([f"{shown}:{line}:{col}: the manifest is not UTF-8 text (byte 0x{data[e.start]:02x})"]) \
            from None


def _display_name(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
