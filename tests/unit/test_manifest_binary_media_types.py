"""The `binary_media_types` of a REST route (payload 1.0): from YAML to the model, its problems located,
the summary line and what a reload sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.manifest import parse_manifest
from lambdad.manifest.diff import manifest_diff
from lambdad.manifest.model import ApiTrigger
from lambdad.summary import describe_trigger

TEXT = """\
version: 1
listeners:
  web: {port: 8080}
functions:
  f:
    handler: app.handler
    events:
      - api: {listener: web, route: "GET /img", payload_format: 1.0, binary_media_types: TYPES}
"""


def parse(tmp_path: Path, types: str, fmt: str = "1.0"):
    (tmp_path / "app.py").write_text("def handler(e, c): pass\n")
    text = TEXT.replace("TYPES", types).replace("payload_format: 1.0", f"payload_format: {fmt}")
    manifest, problems = parse_manifest(text, tmp_path / "lambdad.yaml")
    return manifest, sorted(str(p) for p in problems)


@pytest.mark.parametrize(("types", "built"), [
    ('["image/png", "image/*"]', ("image/png", "image/*")),
    ('["*/*"]', ("*/*",)),
    ("[]", ()),
])
def test_binary_media_types_reach_the_route(tmp_path: Path, types: str, built: tuple):
    manifest, problems = parse(tmp_path, types)
    assert problems == []
    (trigger,) = manifest.functions["f"].events
    assert trigger == ApiTrigger("web", "GET /img", "1.0", binary_media_types=built)


def test_none_by_default_as_on_aws(tmp_path: Path):
    (tmp_path / "app.py").write_text("def handler(e, c): pass\n")
    text = TEXT.replace(", binary_media_types: TYPES", "")
    manifest, problems = parse_manifest(text, tmp_path / "lambdad.yaml")
    assert problems == [] and manifest.functions["f"].events[0].binary_media_types == ()


@pytest.mark.parametrize(("types", "fmt", "expected"), [
    ('["image"]', "1.0", ["lambdad.yaml:8:91: functions.f.events[0].api.binary_media_types[0]: 'image' is not a media "
                          "type: write type/subtype, such as image/png, image/* or */*"]),
    ('["image/png", "text/html; charset=utf-8"]', "1.0",
     ["lambdad.yaml:8:104: functions.f.events[0].api.binary_media_types[1]: 'text/html; charset=utf-8' is not a "
      "media type: write type/subtype, such as image/png, image/* or */*"]),
    ('["*/*"]', "2.0", ["lambdad.yaml:8:90: functions.f.events[0].api.binary_media_types: binary_media_types is a "
                        "REST API setting: it needs payload_format 1.0 and no api_type: http (HTTP APIs "
                        "base64-encode every body that is not text by themselves)"]),
    ('"*/*"', "1.0", ["lambdad.yaml:8:90: functions.f.events[0].api.binary_media_types: expected array, got "
                      "string '*/*'"]),
    ("[5]", "1.0", ["lambdad.yaml:8:91: functions.f.events[0].api.binary_media_types[0]: expected string, got "
                    "integer 5"]),
])
def test_bad_binary_media_types_are_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, types: str, fmt: str,
                                            expected: list[str]):
    monkeypatch.chdir(tmp_path)  # problems name the manifest relative to the working folder
    manifest, problems = parse(tmp_path, types, fmt)
    assert manifest is None and problems == expected


def test_the_summary_lists_them():
    trigger = ApiTrigger("web", "GET /img", "1.0", binary_media_types=("image/*", "application/pdf"))
    assert describe_trigger(trigger, {"listener:web": "http://127.0.0.1:8080"}) == (
        "    api      web  GET http://127.0.0.1:8080/img  payload 1.0  binary image/*,application/pdf")


def test_a_reload_sees_an_edit(tmp_path: Path):
    before, _ = parse(tmp_path, '["image/png"]')
    after, _ = parse(tmp_path, '["*/*"]')
    assert manifest_diff(before, after).summary() == "~function f"


@pytest.mark.parametrize(("fmt", "api_type", "rest", "problem"), [
    ("1.0", None, True, None),
    ("1.0", "rest", True, None),
    ("1.0", "http", False, None),  # an HTTP API sending payload 1.0 events
    ("2.0", None, False, None),
    ("2.0", "http", False, None),
    ("2.0", "rest", None, "lambdad.yaml:8:80: functions.f.events[0].api.api_type: a REST API sends payload format "
                          "1.0 only: set payload_format: '1.0', or use api_type: http"),
    ("1.0", "graphql", None, "lambdad.yaml:8:80: functions.f.events[0].api.api_type: 'graphql' is not one of: "
                             "rest, http"),
])
def test_api_type_says_which_api_a_route_belongs_to(project: Path, fmt: str, api_type: str | None,
                                                    rest: bool | None, problem: str | None):
    (project / "app.py").write_text("def handler(e, c): pass\n")
    extra = f", api_type: {api_type}" if api_type else ""
    text = TEXT.replace(', binary_media_types: TYPES}', extra + "}").replace("payload_format: 1.0",
                                                                              f"payload_format: {fmt}")
    manifest, problems = parse_manifest(text, Path("lambdad.yaml"))
    assert [str(p) for p in problems] == ([problem] if problem else [])
    if rest is not None:
        (trigger,) = manifest.functions["f"].events
        assert trigger.rest is rest
