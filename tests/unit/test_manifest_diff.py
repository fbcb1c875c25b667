"""What a reload acts on: the difference between two valid manifests, for each kind of edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.manifest import parse_manifest
from lambdad.manifest.diff import manifest_diff, pin_restart_only

BASE = """
version: 1
concurrency: 10
buckets:
  ups: {path: ./up}
listeners:
  web: {port: 8080}
functions:
  a:
    handler: app.handler
    events:
      - s3: {bucket: ups, events: ["s3:ObjectCreated:*"], filter: {prefix: x/}}
      - schedule: {name: tick, expression: "rate(5 minutes)"}
  b:
    handler: app.handler
"""


def load(tmp_path: Path, text: str):
    (tmp_path / "app.py").write_text("def handler(e, c): pass\n")
    manifest, problems = parse_manifest(text, tmp_path / "lambdad.yaml")
    assert manifest is not None, problems
    return manifest


@pytest.mark.parametrize(
    ("old", "new", "summary"),
    [
        ("", "", "nothing changed"),
        ("    handler: app.handler\n", "    handler: app.handler\n    description: same code\n", "~function a"),
        ("  b:\n    handler: app.handler\n", "  b:\n    handler: app.handler\n    memory: 256\n",
         "~function b (new environments)"),
        ("  b:\n    handler: app.handler\n", "  b:\n    handler: app.handler\n    environment: {KEY: v}\n",
         "~function b (new environments)"),
        ("  b:\n    handler: app.handler\n", "  b:\n    handler: app.handler\n    reserved_concurrency: 2\n",
         "~function b (new environments)"),
        ("  b:\n    handler: app.handler\n", "  b:\n    handler: app.handler\n    async: {maximum_retry_attempts: 0}\n",
         "~function b"),
        ("  b:\n    handler: app.handler\n", "  b:\n    handler: app.handler\n  c:\n    handler: app.handler\n",
         "+function c"),
        ("  b:\n    handler: app.handler\n", "", "-function b"),
        ("prefix: x/", "prefix: y/", "~function a, ~bucket ups"),
        ("  ups: {path: ./up}", "  ups: {path: ./up, versioning: true}", "~bucket ups"),
        ("  ups: {path: ./up}", "  ups: {path: ./up}\n  downs: {path: ./down}", "+bucket downs"),
        ("rate(5 minutes)", "rate(10 minutes)", "~function a, ~schedule tick"),
        ('"rate(5 minutes)"}', '"rate(5 minutes)", enabled: false}', "~function a, ~schedule tick"),
        ("{port: 8080}", "{port: 8081}", "~listener web"),
        ("version: 1\n", "version: 1\nregion: eu-west-1\n",
         "~function a (new environments), ~function b (new environments), ~region"),
    ],
)
def test_each_edit_changes_only_its_part(tmp_path: Path, old: str, new: str, summary: str):
    before = load(tmp_path, BASE)
    after = load(tmp_path, BASE.replace(old, new, 1) if old else BASE)
    assert manifest_diff(before, after).summary() == summary


def test_restart_only_settings_keep_their_running_values(tmp_path: Path):
    before = load(tmp_path, BASE)
    edited = load(tmp_path, BASE.replace("concurrency: 10", "concurrency: 20\napi: {port: 9100}\ndurability: full"))
    pinned, changed = pin_restart_only(before, edited)
    assert changed == ("concurrency", "durability", "api")
    assert (pinned.concurrency, pinned.durability, pinned.api) == (before.concurrency, before.durability, before.api)
    assert manifest_diff(before, pinned).empty
