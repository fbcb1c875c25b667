"""Manifest loading and validation: every problem reported, located, one per line."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from lambdad.errors import ManifestError
from lambdad.manifest import find_manifest, load_manifest, parse_manifest
from lambdad.manifest.checks import bucket_name_error
from lambdad.manifest.model import AlbTrigger, S3Trigger, ScheduleTrigger, TargetKind
from lambdad.manifest.schema import manifest_schema


def problems_of(project: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    manifest, problems = parse_manifest(text, project / "lambdad.yaml", env or {})
    assert (manifest is None) == bool(problems)
    return [str(p) for p in sorted(problems, key=lambda p: p.sort_key())]


FULL = """
    version: 1
    region: eu-west-1
    account: "111122223333"
    concurrency: 8
    durability: full
    api: {host: 127.0.0.1, port: 9100}
    defaults:
      timeout: 5
      memory: 256
      environment: {STAGE: local, DEBUG: true}
      async: {maximum_retry_attempts: 1, maximum_event_age: 1h, backoff: [1s, 2s]}
    buckets:
      uploads: {path: ./buckets/uploads, versioning: true, ignore: ["*.part"]}
      failed: {path: ./buckets/failed}
    queues:
      thumbnail-dlq: {}
      orders.fifo: {fifo: true, visibility_timeout: 1m, redrive: {dead_letter_queue: orders-dlq.fifo, max_receive_count: 3}}
      orders-dlq.fifo: {}
    listeners:
      web: {host: 127.0.0.1, port: 8080}
    functions:
      thumbnail:
        handler: app.handler
        code: ./functions
        python: PYTHON
        timeout: 2m
        reserved_concurrency: 2
        keep_alive: 30s
        environment: {SIZE: 128}
        async:
          maximum_event_age: 90s
          dead_letter: {queue: thumbnail-dlq}
          on_success: {function: audit}
          on_failure: {folder: ./failures}
        events:
          - s3: {bucket: uploads, events: ["s3:ObjectCreated:*"], filter: {prefix: images/, suffix: .jpg}}
          - schedule: {name: sweep, expression: "rate(5 minutes)", input: {mode: sweep}}
          - alb: {listener: web, path: /thumb/*, methods: [GET, POST], priority: 10, multi_value_headers: true}
      audit:
        handler: pkg.mod.handler
        code: ./functions
"""


def test_full_manifest_builds_the_model(project: Path):
    text = textwrap.dedent(FULL).lstrip().replace("PYTHON", sys.executable)
    manifest = load_manifest_text(project, text)
    assert manifest.region == "eu-west-1"
    assert manifest.account == "111122223333"
    assert manifest.concurrency == 8
    assert manifest.durability == "full"
    assert str(manifest.api) == "http://127.0.0.1:9100"
    assert manifest.function_arn("audit") == "arn:aws:lambda:eu-west-1:111122223333:function:audit"
    assert manifest.buckets["uploads"].path == project / "buckets" / "uploads"
    assert manifest.buckets["uploads"].versioning is True
    assert manifest.queues["orders.fifo"].visibility_timeout_s == 60
    assert manifest.queues["orders.fifo"].redrive_max_receive_count == 3
    fn = manifest.functions["thumbnail"]
    assert fn.timeout_s == 120
    assert fn.memory_mb == 256  # from defaults
    assert fn.keep_alive_s == 30
    assert fn.reserved_concurrency == 2
    assert fn.code == project / "functions"
    assert fn.environment == {"STAGE": "local", "DEBUG": "true", "SIZE": "128"}
    cfg = fn.async_config
    assert (cfg.maximum_retry_attempts, cfg.maximum_event_age_s, cfg.backoff_s) == (1, 90, (1, 2))
    assert cfg.dead_letter.kind is TargetKind.queue and cfg.dead_letter.name == "thumbnail-dlq"
    assert cfg.on_success.kind is TargetKind.function
    assert cfg.on_failure.name == str(project / "failures")
    s3, schedule, alb = fn.events
    assert s3 == S3Trigger("uploads", ("s3:ObjectCreated:*",), "images/", ".jpg")
    assert schedule == ScheduleTrigger("sweep", "rate(5 minutes)", input={"mode": "sweep"})
    assert alb == AlbTrigger("web", "/thumb/*", ("GET", "POST"), None, 10, True)
    audit = manifest.functions["audit"]
    assert audit.timeout_s == 5 and audit.python == sys.executable


def load_manifest_text(project: Path, text: str):
    path = project / "lambdad.yaml"
    path.write_text(text)
    return load_manifest(path, env={})


def test_defaults_apply_without_any_settings(project: Path):
    manifest = load_manifest_text(project, "version: 1\nfunctions:\n  f: {handler: functions/app.handler}\n")
    fn = manifest.functions["f"]
    assert (fn.timeout_s, fn.memory_mb, fn.keep_alive_s) == (3, 128, 600)
    assert fn.code == project
    assert fn.async_config.backoff_s == (60, 120)
    assert fn.async_config.maximum_event_age_s == 21600
    assert manifest.region == "us-east-1" and manifest.account == "123456789012"
    assert str(manifest.api) == "http://127.0.0.1:9001"


BASE = "version: 1\nfunctions:\n  f:\n    handler: app.handler\n    code: ./functions\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BASE + "    tmeout: 3\n",
            ["lambdad.yaml:6:5: functions.f.tmeout: unknown key 'tmeout' (did you mean 'timeout'?)"],
            id="unknown-key-did-you-mean",
        ),
        pytest.param(
            BASE + "    timeout: 0\n",
            ["lambdad.yaml:6:14: functions.f.timeout: 0 is less than the minimum of 1"],
            id="timeout-too-small",
        ),
        pytest.param(
            BASE + "    timeout: 901\n",
            ["lambdad.yaml:6:14: functions.f.timeout: 901 is greater than the maximum of 900"],
            id="timeout-too-big",
        ),
        pytest.param(
            BASE + "    timeout: 20m\n",
            ["lambdad.yaml:6:14: functions.f.timeout: '20m' is out of range: must be between 1s and 900s"],
            id="timeout-duration-out-of-range",
        ),
        pytest.param(
            BASE + "    timeout: 1.5s\n",
            ["lambdad.yaml:6:14: functions.f.timeout: '1.5s' is not a whole number of seconds (Lambda timeouts are)"],
            id="timeout-fractional",
        ),
        pytest.param(
            BASE + "    memory: 64\n",
            ["lambdad.yaml:6:13: functions.f.memory: 64 is less than the minimum of 128"],
            id="memory-too-small",
        ),
        pytest.param(
            BASE + "    keep_alive: soon\n",
            [
                "lambdad.yaml:6:17: functions.f.keep_alive: 'soon' is not a duration: use seconds (90) or a string "
                "such as 90s, 5m, 6h"
            ],
            id="bad-duration",
        ),
        pytest.param(
            "version: 2\nfunctions:\n  f: {handler: app.handler, code: ./functions}\n",
            ["lambdad.yaml:1:10: version: must be 1, not 2"],
            id="version",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  f: {code: ./functions}\n",
            ["lambdad.yaml:3:6: functions.f: missing required key 'handler'"],
            id="missing-handler",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  f: {handler: app, code: ./functions}\n",
            [
                "lambdad.yaml:3:16: functions.f.handler: 'app' is not a handler: use module.function, "
                "for example app.handler"
            ],
            id="handler-shape",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  f: {handler: nothere.handler, code: ./functions}\n",
            [
                "lambdad.yaml:3:16: functions.f.handler: module 'nothere' not found in '{root}/functions' "
                "(looked for nothere.py)"
            ],
            id="handler-module-missing",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  f: {handler: app.handler, code: ./nope}\n",
            ["lambdad.yaml:3:35: functions.f.code: code folder '{root}/nope' does not exist"],
            id="code-folder-missing",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  bad name!: {handler: app.handler, code: ./functions}\n",
            ["lambdad.yaml:3:3: functions.bad name!: function name 'bad name!' must be 1 to 64 letters, digits, - or _"],
            id="function-name",
        ),
        pytest.param(
            "version: 1\nbuckets:\n  My_Bucket: {path: ./b}\nfunctions:\n  f: {handler: app.handler, code: ./functions}\n",
            [
                "lambdad.yaml:3:3: buckets.My_Bucket: bucket name 'My_Bucket' must use lowercase letters, digits, "
                "dots and hyphens, and begin and end with a letter or digit"
            ],
            id="bucket-name",
        ),
        pytest.param(
            BASE + "    events:\n      - s3: {bucket: uplods}\nbuckets:\n  uploads: {path: ./up}\n",
            [
                "lambdad.yaml:7:22: functions.f.events[0].s3.bucket: bucket 'uplods' is not defined "
                "(did you mean 'uploads'?) (known: uploads)"
            ],
            id="unknown-bucket",
        ),
        pytest.param(
            BASE + "    events:\n      - alb: {listener: web}\n",
            ["lambdad.yaml:7:25: functions.f.events[0].alb.listener: listener 'web' is not defined (known: none defined)"],
            id="unknown-listener",
        ),
        pytest.param(
            BASE + "    events:\n      - sqs: {queue: nope}\n",
            ["lambdad.yaml:7:22: functions.f.events[0].sqs.queue: queue 'nope' is not defined (known: none defined)"],
            id="unknown-queue",
        ),
        pytest.param(
            "version: 1\nqueues:\n  q: {visibility_timeout: 10}\n  o.fifo: {fifo: true}\nfunctions:\n  f:\n"
            "    handler: app.handler\n    code: ./functions\n    timeout: 20\n    events:\n"
            "      - sqs: {queue: q, batch_size: 50}\n      - sqs: {queue: o.fifo, batch_size: 20, "
            "maximum_batching_window: 5s}\n    async: {dead_letter: {queue: o.fifo}}\n",
            [
                "lambdad.yaml:11:22: functions.f.events[0].sqs.queue: Queue visibility timeout: 10 seconds is less "
                "than Function timeout: 20 seconds",
                "lambdad.yaml:11:37: functions.f.events[0].sqs.batch_size: a batch_size over 10 needs "
                "maximum_batching_window of at least 1s",
                "lambdad.yaml:12:42: functions.f.events[1].sqs.batch_size: a FIFO queue's batch_size is at most 10",
                "lambdad.yaml:13:34: functions.f.async.dead_letter.queue: queue 'o.fifo' is FIFO: Lambda sends dead "
                "letters and destination records to standard queues only",
            ],
            id="sqs-mappings-lambda-refuses",
        ),
        pytest.param(
            BASE + "    events:\n      - apigw: {route: q}\n      - s4: {bucket: b}\n",
            [
                "lambdad.yaml:7:9: functions.f.events[0].apigw: unknown key 'apigw' (did you mean 'api'?)",
                "lambdad.yaml:8:9: functions.f.events[1].s4: unknown key 's4' (did you mean 's3'?)",
            ],
            id="unknown-trigger",
        ),
        pytest.param(
            BASE + "    events:\n      - {}\n",
            ["lambdad.yaml:7:9: functions.f.events[0]: give exactly one of: s3, schedule, alb, api, url, sqs, kinesis, dynamodb"],
            id="empty-trigger",
        ),
        pytest.param(
            BASE + "    async: {dead_letter: {queue: dlq}, on_success: {function: nobody}}\n",
            [
                "lambdad.yaml:6:34: functions.f.async.dead_letter.queue: queue 'dlq' is not defined (known: none defined)",
                "lambdad.yaml:6:63: functions.f.async.on_success.function: function 'nobody' is not defined "
                "(known: f)",
            ],
            id="unknown-destinations",
        ),
        pytest.param(
            BASE + "    async: {maximum_event_age: 7h, maximum_retry_attempts: 3}\n",
            [
                "lambdad.yaml:6:60: functions.f.async.maximum_retry_attempts: 3 is greater than the maximum of 2",
            ],
            id="retry-attempts",
        ),
        pytest.param(
            BASE + "    async: {maximum_event_age: 7h}\n",
            [
                "lambdad.yaml:6:32: functions.f.async.maximum_event_age: '7h' is out of range: must be between 1s "
                "and 21600s"
            ],
            id="event-age",
        ),
        pytest.param(
            "version: 1\nbuckets:\n  outer: {path: ./b}\n  inner: {path: ./b/in}\n"
            "functions:\n  f: {handler: app.handler, code: ./functions}\n",
            [
                "lambdad.yaml:4:17: buckets.inner.path: bucket 'inner' folder overlaps bucket 'outer' ({root}/b); "
                "folders must not nest"
            ],
            id="nested-buckets",
        ),
        pytest.param(
            BASE + "    environment: {AWS_REGION: x}\n",
            [
                "lambdad.yaml:6:19: functions.f.environment.AWS_REGION: AWS_REGION is reserved by the Lambda runtime "
                "and cannot be set",
            ],
            id="reserved-environment",
        ),
        pytest.param(
            BASE + "    environment: {OK: x, '1X': y}\n",
            [
                "lambdad.yaml:6:26: functions.f.environment.1X: '1X' is not a valid environment variable name: "
                "letters, digits and _, starting with a letter, at least 2 characters",
            ],
            id="environment",
        ),
        pytest.param(
            BASE + "    python: /no/such/python\n",
            ["lambdad.yaml:6:13: functions.f.python: python interpreter '/no/such/python' not found or not executable"],
            id="python-missing",
        ),
        pytest.param(
            "version: 1\nlisteners:\n  web: {port: 9001}\nfunctions:\n  f: {handler: app.handler, code: ./functions}\n",
            ["lambdad.yaml:3:15: listeners.web.port: 127.0.0.1:9001 is already used by the api"],
            id="port-clash",
        ),
        pytest.param(
            "version: 1\nqueues:\n  orders: {fifo: true}\nfunctions:\n  f: {handler: app.handler, code: ./functions}\n",
            ["lambdad.yaml:3:3: queues.orders: queue 'orders': a FIFO queue's name must end in .fifo, and only a FIFO's"],
            id="fifo-name",
        ),
        pytest.param(
            BASE + "    events:\n      - schedule: {name: a, expression: 'rate(1 minute)'}\n"
            "  g:\n    handler: app.handler\n    code: ./functions\n    events:\n"
            "      - schedule: {name: a, expression: 'rate(2 minutes)'}\n",
            ["lambdad.yaml:12:26: functions.g.events[0].schedule.name: schedule name 'a' is already used by function 'f'"],
            id="duplicate-schedule-name",
        ),
        pytest.param(
            "version: 1\nfunctions:\n  f: {handler: app.handler, code: ./functions, timeout: 0, memory: 1, x: 1}\n",
            [
                "lambdad.yaml:3:57: functions.f.timeout: 0 is less than the minimum of 1",
                "lambdad.yaml:3:68: functions.f.memory: 1 is less than the minimum of 128",
                "lambdad.yaml:3:71: functions.f.x: unknown key 'x'",
            ],
            id="all-problems-at-once",
        ),
        pytest.param(
            BASE.replace("./functions", "${CODE_DIR}"),
            ["lambdad.yaml:5:11: functions.f.code: environment variable 'CODE_DIR' is not set (use ${CODE_DIR:-default})"],
            id="unset-variable",
        ),
        pytest.param(
            "version: 1\nfunctions: [1, 2\n",
            [
                "lambdad.yaml:2:12: YAML syntax error: this '[' is never closed (reading stopped at line 3, column 1)",
                "lambdad.yaml:3:1: YAML syntax error: did not find expected ',' or ']' (the '[' at line 2, column 12 "
                "is never closed)",
            ],
            id="yaml-syntax",
        ),
        pytest.param(
            "version: 1\nconcurrency: 4\nfunctions:\n  f: {handler: app.handler, code: ./functions, reserved_concurrency: 4}\n"
            "  g: {handler: app.handler, code: ./functions}\n",
            ["lambdad.yaml:4:70: functions.f.reserved_concurrency: reserved_concurrency adds up to 4 of concurrency 4: "
             "leave at least 1 for the 1 function(s) without a reservation"],
            id="reservations-leave-nothing",
        ),
        pytest.param("", ["lambdad.yaml: the manifest is empty"], id="empty"),
        pytest.param(
            "- just\n- a list\n",
            ["lambdad.yaml:1:1: expected object, got array ['just', 'a list']"],
            id="not-a-mapping",
        ),
    ],
)
def test_problems_are_reported_with_location(project: Path, text: str, expected: list[str]):
    got = problems_of(project, text)
    assert got == [line.replace("{root}", str(project)) for line in expected]


def test_variables_expand_and_paths_resolve_against_the_manifest(project: Path, monkeypatch: pytest.MonkeyPatch):
    sub = project / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)  # a different working folder must not matter
    text = "version: 1\nfunctions:\n  f:\n    handler: app.handler\n    code: ${DIR:-./functions}\n    memory: ${MEM}\n"
    manifest, problems = parse_manifest(text, project / "lambdad.yaml", {"MEM": "512"})
    assert problems == []
    assert manifest.functions["f"].code == project / "functions"
    assert manifest.functions["f"].memory_mb == 512


def test_load_manifest_raises_with_every_line(project: Path):
    (project / "lambdad.yaml").write_text("version: 1\nfunctions:\n  f: {handler: app.handler, timeout: 0, memory: 1}\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(project / "lambdad.yaml", env={})
    assert info.value.problems == [
        "lambdad.yaml:3:38: functions.f.timeout: 0 is less than the minimum of 1",
        "lambdad.yaml:3:49: functions.f.memory: 1 is less than the minimum of 128",
    ]
    # Cross-reference checks (here: the handler's module) run once the structure is valid.
    (project / "lambdad.yaml").write_text("version: 1\nfunctions:\n  f: {handler: app.handler}\n")
    with pytest.raises(ManifestError, match="module 'app' not found"):
        load_manifest(project / "lambdad.yaml", env={})


def test_find_manifest_order(project: Path):
    with pytest.raises(ManifestError, match="no manifest found"):
        find_manifest(None, project)
    (project / "config").mkdir()
    (project / "config" / "lambdad.yaml").write_text("")
    assert find_manifest(None, project) == project / "config" / "lambdad.yaml"
    (project / "lambdad.yaml").write_text("")
    assert find_manifest(None, project) == project / "lambdad.yaml"
    assert find_manifest("config/lambdad.yaml", project) == project / "config" / "lambdad.yaml"
    with pytest.raises(ManifestError, match=r"other\.yaml: manifest not found"):
        find_manifest("other.yaml", project)


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(manifest_schema())
    assert manifest_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("uploads", True),
        ("my.bucket-1", True),
        ("ab", False),
        ("a" * 64, False),
        ("Uploads", False),
        ("under_score", False),
        ("-start", False),
        ("end-", False),
        ("two..dots", False),
        ("192.168.1.1", False),
        ("xn--bucket", False),
        ("bucket-s3alias", False),
    ],
)
def test_bucket_names_follow_s3_rules(name: str, ok: bool):
    assert (bucket_name_error(name) is None) == ok


def test_a_visibility_timeout_under_six_times_the_function_timeout_is_a_warning(project: Path):
    text = ("version: 1\nqueues:\n  q: {visibility_timeout: 30}\nfunctions:\n  f:\n    handler: app.handler\n"
            "    code: ./functions\n    timeout: 10\n    events:\n      - sqs: {queue: q}\n")
    manifest, problems = parse_manifest(text, project / "lambdad.yaml")
    assert problems == [] and manifest is not None
    assert manifest.warnings == (
        "lambdad.yaml:10:22: functions.f.events[0].sqs.queue: queue 'q' has a visibility timeout of 30s; AWS "
        "recommends at least 6 times the function's timeout (60s), so that retries of throttled batches do not "
        "reappear early",)
