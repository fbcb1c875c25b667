"""Load, validate and model the manifest: YAML with marks -> JSON Schema -> model -> cross-field checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from lambdad.errors import ManifestError
from lambdad.manifest.build import Builder
from lambdad.manifest.checks import WARNINGS, run_checks
from lambdad.manifest.model import Function, Manifest
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
        if not path.is_file():
            raise ManifestError([f"{explicit}: manifest not found"])
        return path
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
    problems += schema_problems(data, marks, shown)
    if problems:
        return None, problems
    builder = Builder(data, marks, file.absolute())
    manifest = builder.build()
    problems += [Problem(shown, p.mark, p.path, p.message) for p in builder.problems]
    for finding in run_checks(manifest):
        mark = marks.key(finding.where) if finding.on_key else marks.value(finding.where)
        problems.append(Problem(shown, mark, finding.where, finding.message))
    if problems:
        return None, problems
    warnings = [str(Problem(shown, marks.value(f.where), f.where, f.message)) for f in run_checks(manifest, WARNINGS)]
    return replace(manifest, warnings=tuple(warnings)), problems


def load_manifest(path: Path, env: Mapping[str, str] | None = None) -> Manifest:
    """Read and validate the manifest at `path`.

    Raises:
        ManifestError: listing every problem, one `FILE:LINE:COL: path: message` per line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError([f"{_display_name(path)}: cannot read manifest: {e}"]) from None
    manifest, problems = parse_manifest(text, path, env)
    if manifest is None:
        raise ManifestError(format_problems(problems).splitlines())
    return replace(manifest, source=text)


def _display_name(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
