"""Imports point down the layers: read from the source with `ast`, every import counted (inside
functions and `TYPE_CHECKING` blocks too), so a lower layer cannot reach up even lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lambdad

PACKAGE = Path(lambdad.__file__).parent

#: What the manifest layer may use besides itself: the bottom of the stack.
BOTTOM = ("lambdad.clock", "lambdad.errors", "lambdad.shown", "lambdad.durations")
#: What lies above the store (and the manifest): neither may import any of it.
ABOVE_STORE = ("lambdad.runtime", "lambdad.api", "lambdad.http", "lambdad.cli", "lambdad.daemon", "lambdad.triggers",
               "lambdad.payloads", "lambdad.services", "lambdad.outcomes", "lambdad.dispatcher")
FACES = ("lambdad.api", "lambdad.http", "lambdad.cli")
#: The shared AWS vocabulary and plumbing at the bottom, which everything may use.
VOCABULARY = ("lambdad.ids", "lambdad.sqs_vocabulary", "lambdad.stream_vocabulary", "lambdad.route_keys",
              "lambdad.backoff", "lambdad.health", "lambdad.loops", "lambdad.tracing", "lambdad.signals",
              "lambdad.tasks", "lambdad.private", "lambdad.safefiles")
#: What payload builders may not use: they are pure, below every part that sends them.
ABOVE_PAYLOADS = ("lambdad.services", "lambdad.outcomes", "lambdad.dispatcher", "lambdad.runtime",
                  "lambdad.triggers", "lambdad.api", "lambdad.http", "lambdad.cli", "lambdad.daemon")

#: Store modules that still import from above it (its SQS semantics are moving to a service).
STORE_REACHES_UP: set[str] = set()
#: Faces that still run store operations themselves (they are moving to the services).
FACES_USING_STORE: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, by absolute name (`from a import b` counts as `a.b` too: b may be one)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def modules(package: str) -> list[str]:
    folder = PACKAGE.parent.joinpath(*package.split("."))
    return sorted(module_name(p) for p in folder.rglob("*.py"))


def imports_of(name: str) -> set[str]:
    path = PACKAGE.parent.joinpath(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return set(imported(path))


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def cases(package: str, known: set[str], reason: str) -> list:
    return [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=reason)) if m in known else m
            for m in modules(package)]


def test_the_walk_sees_every_kind_of_import():
    assert {"lambdad.manifest.model", "lambdad.durations"} <= imports_of("lambdad.manifest.build")
    assert "lambdad.runtime.invocation" in imports_of("lambdad.api.lambda_api")  # a `from a.b import c`
    assert "lambdad.triggers.schedules.expressions" in imports_of("lambdad.triggers.schedules.checks")  # inside a function


@pytest.mark.parametrize("module", modules("lambdad.manifest"))
def test_the_manifest_imports_only_the_bottom_layer(module: str):
    upward = {n for n in imports_of(module) if n.startswith("lambdad.") and not within(n, ("lambdad.manifest", *BOTTOM))}
    assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("module", cases("lambdad.store", STORE_REACHES_UP, "its queue semantics are not a service yet"))
def test_the_store_imports_nothing_above_it(module: str):
    upward = {n for n in imports_of(module) if within(n, ABOVE_STORE)}
    assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("module", modules("lambdad.store"))
def test_the_store_reads_no_clock(module: str):
    assert not {n for n in imports_of(module) if within(n, ("lambdad.clock",))}, f"{module} imports lambdad.clock"


@pytest.mark.parametrize("module", [case for face in FACES
                                    for case in cases(face, FACES_USING_STORE, "still runs store operations itself")])
def test_faces_do_not_import_the_store(module: str):
    used = {n for n in imports_of(module) if within(n, ("lambdad.store",))}
    assert not used, f"{module} imports {sorted(used)}"


def test_importing_the_manifest_loads_no_feature():
    """What runs at run time, not only what the source says (and the CLI's start-up stays light)."""
    code = "import sys, lambdad.manifest; print(' '.join(sorted(m for m in sys.modules if m.startswith('lambdad'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent).stdout.split()
    assert "lambdad.manifest.checks" in loaded
    assert [m for m in loaded if m != "lambdad" and not within(m, ("lambdad.manifest", *BOTTOM))] == []


@pytest.mark.parametrize("module", VOCABULARY)
def test_the_vocabulary_imports_only_the_bottom(module: str):
    allowed = ("lambdad.manifest", *BOTTOM, *VOCABULARY)
    upward = {n for n in imports_of(module) if n.startswith("lambdad.") and not within(n, allowed)}
    assert not upward, f"{module} imports {sorted(upward)}"


@pytest.mark.parametrize("module", modules("lambdad.payloads"))
def test_payload_builders_import_no_part_that_sends_them(module: str):
    upward = {n for n in imports_of(module) if within(n, ABOVE_PAYLOADS)}
    assert not upward, f"{module} imports {sorted(upward)}"
