"""The manifest runs the checks registered with it: its own first, then each feature's, each once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lambdad
from lambdad import validation
from lambdad.manifest import checks, parse_manifest
from lambdad.manifest import model as m
from lambdad.triggers.mappings import checks as sources

MANIFEST = """\
version: 1
functions:
  hello:
    handler: app.handler
    code: ./functions
    events:
      - schedule: {name: tick, expression: "rate(0 minutes)"}
"""


def test_the_manifests_own_checks_come_first_then_each_features_in_order():
    validation.register_feature_checks()
    expected = [checks.check_names, checks.check_references]
    for feature in validation.FEATURES:
        expected += feature.CHECKS
    assert list(checks.registered()) == expected
    assert checks.registered(warning=True) == sources.WARNINGS


def test_registering_again_runs_each_check_once():
    before = checks.registered(), checks.registered(warning=True)
    validation.register_feature_checks()
    checks.register(checks.check_names)
    assert (checks.registered(), checks.registered(warning=True)) == before


def test_a_registered_check_is_reported_like_the_others(project: Path, monkeypatch: pytest.MonkeyPatch):
    def no_hello(man: m.Manifest) -> Iterator[checks.Finding]:
        if "hello" in man.functions:
            yield checks.Finding(("functions", "hello"), "hello is not welcome", on_key=True)

    monkeypatch.setattr(checks, "_CHECKS", [*checks.registered(), no_hello])
    manifest, problems = parse_manifest(MANIFEST, project / "lambdad.yaml", {})
    assert manifest is None
    assert [str(p) for p in problems] == [
        "lambdad.yaml:7:44: functions.hello.events[0].schedule.expression: rate(0 minutes): the value must be at "
        "least 1",
        "lambdad.yaml:3:3: functions.hello: hello is not welcome",
    ]


def test_only_the_checks_given_run(project: Path):
    manifest, _ = parse_manifest(MANIFEST.replace("0 minutes", "1 minute"), project / "lambdad.yaml", {})
    assert manifest is not None
    assert checks.run_checks(manifest, ()) == []
    assert checks.run_checks(manifest, [lambda man: iter([checks.Finding(("x",), "found")])]) == [
        checks.Finding(("x",), "found")
    ]


def test_validate_runs_the_features_checks_by_itself(project: Path):
    """(In a process of its own: here the test set-up has registered them already.)"""
    (project / "lambdad.yaml").write_text(MANIFEST)
    done = subprocess.run([sys.executable, "-m", "lambdad", "validate", "-f", "lambdad.yaml"], cwd=project,
                          capture_output=True, text=True, env={"PYTHONPATH": str(Path(lambdad.__file__).parents[1])})
    assert (done.returncode, done.stderr.strip()) == (2, "lambdad.yaml:7:44: functions.hello.events[0].schedule."
                                                        "expression: rate(0 minutes): the value must be at least 1")
