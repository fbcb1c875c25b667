"""Fuzzing the manifest: mutations of real manifests are either a valid model or a ManifestError.

The seeds are the demo manifest and the unit tests' full manifest. A mutation replaces a value
(with a scalar or a structure YAML can hold, or raw YAML text: tags, aliases, merges, odd
numbers), deletes a key, or duplicates a line. Whatever comes out, `load_manifest` returns a
Manifest whose numbers are all usable, or raises ManifestError; `lambdad validate` exits 0 or 2
and prints no traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import shutil
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdad.cli import main
from lambdad.errors import ManifestError
from lambdad.manifest import Manifest, load_manifest
from lambdad.manifest import model as m
from tests.unit.test_manifest import FULL

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "config" / "lambdad.yaml").read_text(encoding="utf-8")
SEEDS = [DEMO, FULL.replace("PYTHON", sys.executable)]

#: Raw YAML put in place of a value: what a person (or an attacker) may type that a dumper never writes.
RAW = [
    ".nan", ".inf", "-.inf", "-0.0", "9" * 309, "9" * 5000, "1.0e+400", "0x_", "0o9", "1_000", "~", "null",
    "2024-02-30", "2024-01-01T00:00:00Z", "!!binary aGk=", "!!binary '!'", "!!float x", "!!int 1.5", "!!str 1",
    "!!python/object/apply:os.system ['true']", "!!set {a, b}", "!!omap [a: 1]", "&x [*x]", "*nowhere",
    "&y {<<: *y}", "{<<: 5}", "{<<: [1, 2]}", '"\\0"', '"a\\nb"', '"\\u2028"', "'${NOPE}'", "${NOPE}",
    "${HOME:-x}", "$${x}", "[" * 80 + "]" * 80, "{a: " * 70 + "1" + "}" * 70, "true", "yes", "on", "'1'",
    "[1, 2", "{", "}", "- a", "? a", "|\n  text", "\x07", "\t", '"\\ud800"', "é", "/", "../../etc", "-1",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ROOT / "config" / "functions", root / "functions")
    (root / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    (root / "functions" / "pkg").mkdir()
    (root / "functions" / "pkg" / "__init__.py").write_text("")
    (root / "functions" / "pkg" / "mod.py").write_text("def handler(e, c):\n    return e\n")
    before = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)


def paths_of(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths_of(item, (*path, i))


def replaced(doc: Any, path: tuple, new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    if delete and not rest:
        del out[head]
    else:
        out[head] = replaced(doc[head], rest, new, delete)
    return out


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "app.handler", "x.y", "rate(1 minute)", "cron(0 12 * * ? *)", "us-east-1", "30s", "1.5s", "-1",
     "900", "5m", "a" * 300, "\x00", "GET /{x}", "$default", "./functions", "/", "..", "s3:ObjectCreated:*"])
numbers = (
    st.integers() | st.integers(min_value=10**300, max_value=10**310) | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -0.0, 1, 5.0, 128, 10240, 65535, 65536, -1])
)
scalars = st.none() | st.booleans() | numbers | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=8)


@st.composite
def mutated_manifests(draw: st.DrawFn) -> str:
    doc = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    raws: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths_of(doc))))
        action = draw(st.sampled_from(["value", "value", "raw", "delete"]))
        if action == "delete" and path:
            doc = replaced(doc, path, None, delete=True)
        elif action == "raw":
            raws.append(draw(st.sampled_from(RAW)))
            doc = replaced(doc, path, f"__RAW_{len(raws) - 1}__")
        else:
            doc = replaced(doc, path, draw(values))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans()), width=10**6)
    for i, raw in enumerate(raws):
        text = text.replace(f"__RAW_{i}__", raw)
    lines = text.splitlines(keepends=True)
    if draw(st.booleans()) and lines:  # a duplicated line: often a duplicate key
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    return "".join(lines)


def assert_usable(value: Any, where: str = "manifest") -> None:
    """Every number in the model is one the daemon can use: finite floats, real ints."""
    if dataclasses.is_dataclass(value):
        hints = typing.get_type_hints(type(value), vars(m))
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            hint = hints[f.name]
            if hint is int or hint == int | None:
                assert item is None or (type(item) is int), f"{where}.{f.name} = {item!r}"
            if hint is float or hint == float | None:
                assert item is None or (type(item) is float and math.isfinite(item)), f"{where}.{f.name} = {item!r}"
            assert_usable(item, f"{where}.{f.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_usable(item, f"{where}[{key!r}]")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            assert_usable(item, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value!r}"


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_seeds_are_valid(project: Path):
    for i, seed in enumerate(SEEDS):
        (project / f"seed{i}.yaml").write_text(seed, encoding="utf-8")
        assert_usable(load_manifest(project / f"seed{i}.yaml"))


@FUZZ
@given(text=mutated_manifests())
def test_load_manifest_returns_a_manifest_or_raises_manifest_error(project: Path, text: str):
    path = project / "lambdad.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        manifest = load_manifest(path)
    except ManifestError as e:
        assert e.problems and all(line and "\n" not in line for line in e.problems)
        assert all(line.startswith("lambdad.yaml") for line in e.problems), e.problems
        return
    assert isinstance(manifest, Manifest)
    assert_usable(manifest)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_manifests())
def test_validate_exits_0_or_2_without_a_traceback(project: Path, text: str):
    (project / "v.yaml").write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "-f", "v.yaml"])
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue() + out.getvalue()
    if code == 2:
        assert all(line.startswith(("v.yaml", "lambdad: v.yaml")) for line in err.getvalue().splitlines())
