"""`recursive_loop:` in the manifest: terminate by default, allow per function, anything else refused;
changing it keeps the function's environments warm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lambdad.manifest import parse_manifest
from lambdad.manifest.diff import manifest_diff
from lambdad.manifest.model import RecursiveLoop

TEXT = """
version: 1
functions:
  a: {handler: app.handler, code: ./functions}
  b: {handler: app.handler, code: ./functions, recursive_loop: allow}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    return tmp_path


def test_terminate_is_the_default_and_allow_is_per_function(project: Path):
    manifest, problems = parse_manifest(TEXT, project / "lambdad.yaml", {})
    assert not problems
    assert manifest.functions["a"].recursive_loop is RecursiveLoop.terminate
    assert manifest.functions["b"].recursive_loop is RecursiveLoop.allow


def test_another_value_is_refused_with_its_place(project: Path):
    _, problems = parse_manifest(TEXT.replace("allow", "Allow"), project / "lambdad.yaml", {})
    (problem,) = [str(p) for p in problems]
    assert problem.endswith("lambdad.yaml:5:64: functions.b.recursive_loop: 'Allow' is not one of: terminate, allow "
                            "(did you mean 'allow'?)")


def test_changing_it_updates_the_function_without_new_environments(project: Path):
    before, _ = parse_manifest(TEXT, project / "lambdad.yaml", {})
    fn = before.functions["a"]
    after = replace(before, functions={**before.functions, "a": replace(fn, recursive_loop=RecursiveLoop.allow)})
    diff = manifest_diff(before, after)
    assert diff.functions_updated == ("a",) and diff.functions_recycled == ()
