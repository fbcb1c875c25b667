"""`lambdad validate` reports every problem in one run: a broken part does not hide the others'."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lambdad.manifest import parse_manifest
from lambdad.manifest.parts import broken_parts, part_of


def problems_of(text: str) -> list[str]:
    manifest, problems = parse_manifest(textwrap.dedent(text), Path("lambdad.yaml").absolute(), {})
    assert manifest is None
    return [str(p) for p in sorted(problems, key=lambda p: p.sort_key())]


FN = "    handler: app.handler\n    code: ./functions\n"

CASES = [
    pytest.param(
        "version: 1\nfunctions:\n  a:\n" + FN + "    timeout: 0\n  b c:\n" + FN,
        [
            "lambdad.yaml:6:14: functions.a.timeout: 0 is less than the minimum of 1",
            "lambdad.yaml:7:3: functions.b c: function name 'b c' must be 1 to 64 letters, digits, - or _",
        ],
        id="schema-error-and-bad-name-in-another-function",
    ),
    pytest.param(
        "version: 1\nfunctions:\n  a:\n" + FN + "    memry: 256\n  b:\n" + FN + "    events:\n"
        "      - sqs: {queue: jobz}\nqueues:\n  jobs: {}\n",
        [
            "lambdad.yaml:6:5: functions.a.memry: unknown key 'memry' (did you mean 'memory'?)",
            "lambdad.yaml:11:22: functions.b.events[0].sqs.queue: queue 'jobz' is not defined (did you mean "
            "'jobs'?) (known: jobs)",
        ],
        id="unknown-key-and-unknown-queue",
    ),
    pytest.param(
        "version: 1\nfunctions:\n  b:\n" + FN + "    events:\n      - sqs: {queue: jobs}\n"
        "      - sqs: {queue: nope}\nqueues:\n  jobs: {visibility_timeout: fast}\n",
        [
            "lambdad.yaml:8:22: functions.b.events[1].sqs.queue: queue 'nope' is not defined (known: jobs)",
            "lambdad.yaml:10:30: queues.jobs.visibility_timeout: 'fast' is not a duration: use seconds (90) or a "
            "string such as 90s, 5m, 6h",
        ],
        id="a-broken-queue-is-not-also-missing",
    ),
    pytest.param(
        "version: 1\nregion: Europe\nfunctions:\n  a:\n" + FN + "    async: {on_success: {function: c}}\n"
        "  c:\n" + FN + "    events: [{s3: {bucket: up}}]\nbuckets:\n  Up: {path: ./up}\n",
        [
            "lambdad.yaml:2:9: region: 'Europe' does not match '^[a-z]{2}(-[a-z]+)+-[0-9]+$'",
            "lambdad.yaml:11:28: functions.c.events[0].s3.bucket: bucket 'up' is not defined (did you mean 'Up'?) "
            "(known: Up)",
            "lambdad.yaml:13:3: buckets.Up: bucket name 'Up' must be 3 to 63 characters long",
        ],
        id="setting-function-and-bucket",
    ),
    pytest.param(
        "version: 1\nfunctions:\n  a:\n" + FN + "    timeout: 3\n    timeout: 4\n  b:\n" + FN
        + "    events: [{api: {listener: web, route: GET /x}}]\n",
        [
            "lambdad.yaml:7:5: functions.a.timeout: duplicate key 'timeout' (first at line 6, column 5)",
            "lambdad.yaml:11:31: functions.b.events[0].api.listener: listener 'web' is not defined (known: none "
            "defined)",
        ],
        id="duplicate-key-and-unknown-listener",
    ),
    pytest.param(
        "version: 1\ndefaults: {timeout: never}\nfunctions:\n  b c:\n" + FN,
        ["lambdad.yaml:2:21: defaults.timeout: 'never' is not a duration: use seconds (90) or a string such as 90s, "
         "5m, 6h"],
        id="broken-defaults-skip-the-semantic-checks",
    ),
    pytest.param(
        "version: 1\nfunctions: []\nqueues:\n  bad name: {}\n",
        ["lambdad.yaml:2:12: functions: expected object, got array []"],
        id="a-broken-section-skips-the-semantic-checks",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_independent_parts_are_all_reported_sorted_by_line(project: Path, text: str, expected: list[str]):
    assert problems_of(text) == expected


@pytest.mark.parametrize(
    ("path", "part"),
    [
        (("functions", "a", "events", 0, "sqs"), ("functions", "a")),
        (("queues", "q"), ("queues", "q")),
        (("region",), ("region",)),
        (("functions",), None),
        (("defaults", "timeout"), None),
        (("api", "port"), None),
        ((), None),
    ],
)
def test_part_of(path: tuple, part: tuple | None):
    assert part_of(path) == part
    assert broken_parts([path]) == (None if part is None else {part})
