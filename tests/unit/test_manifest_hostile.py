"""Hostile manifests: every one is refused with located one-line problems, never another exception.

Each row is a value some setting was given (or a whole file) and the problem it must produce:
numbers that are not finite or do not fit a float, floats and booleans where integers are meant,
NUL bytes in paths, nesting and alias bombs, unreadable files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdad.errors import ManifestError
from lambdad.manifest import load_manifest, parse_manifest
from lambdad.manifest.yamlmarks import load_yaml

BASE = "version: 1\nfunctions:\n  f:\n    handler: app.handler\n    code: ./functions\n"
BIG = "9" * 309  # one more digit than a float holds: float() raises OverflowError


def with_event(event: str, extra: str = "") -> str:
    return BASE + f"    events:\n      - {event}\n" + extra



def problems_of(project: Path, text: str) -> list[str]:
    manifest, problems = parse_manifest(text, project / "lambdad.yaml", {})
    assert manifest is None, "a hostile manifest was accepted"
    return sorted(str(p) for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(BASE + "queues:\n  q: {visibility_timeout: .nan}\n",
                     ["lambdad.yaml:7:27: queues.q.visibility_timeout: nan is not a finite number"], id="nan"),
        pytest.param(BASE + "queues:\n  q: {delay: .inf}\n",
                     ["lambdad.yaml:7:14: queues.q.delay: inf is not a finite number"], id="inf"),
        pytest.param(BASE + "    keep_alive: -.inf\n",
                     ["lambdad.yaml:6:17: functions.f.keep_alive: -inf is not a finite number"], id="minus-inf"),
        pytest.param(BASE + f"queues:\n  q: {{visibility_timeout: {BIG}}}\n",
                     ["lambdad.yaml:7:27: queues.q.visibility_timeout: a 309-digit number is too large for a "
                      "duration"], id="309-digit-duration"),
        pytest.param(BASE + f"queues:\n  q: {{message_retention: '{BIG}s'}}\n",
                     ["lambdad.yaml:7:26: queues.q.message_retention: '" + "9" * 54 + "...' is too large for a "
                      "duration"], id="309-digit-duration-string"),
        pytest.param(BASE + f"    timeout: {BIG}\n",
                     ["lambdad.yaml:6:14: functions.f.timeout: a 309-digit number is greater than the maximum of 900"],
                     id="309-digit-timeout"),
        pytest.param(BASE + f"    memory: {'9' * 5000}\n",
                     ["lambdad.yaml:6:13: functions.f.memory: '999999999999999999999999999999999999999999999999999999"
                      "...' cannot be read as a YAML int: too many digits"], id="5000-digit-int"),
        pytest.param(BASE + "    keep_alive: 1.0e+300\n",
                     ["lambdad.yaml:6:17: functions.f.keep_alive: 1e+300 is out of range: must be between 1s and "
                      "604800s"], id="keep-alive-unbounded"),
        pytest.param(BASE + "    async: {backoff: [1.0e+300]}\n",
                     ["lambdad.yaml:6:23: functions.f.async.backoff[0]: 1e+300 is out of range: must be between 0s "
                      "and 21600s"], id="backoff-unbounded"),
        pytest.param(with_event("kinesis: {stream: s, maximum_record_age: .nan}", "streams:\n  s: {}\n"),
                     ["lambdad.yaml:7:50: functions.f.events[0].kinesis.maximum_record_age: nan is not a finite "
                      "number"], id="record-age-nan"),
        pytest.param(BASE + "    memory: 256.0\n",
                     ["lambdad.yaml:6:13: functions.f.memory: expected integer, got number 256.0 (write 256)"],
                     id="float-memory"),
        pytest.param(BASE + "    memory: true\n",
                     ["lambdad.yaml:6:13: functions.f.memory: expected integer, got boolean True"], id="bool-memory"),
        pytest.param(BASE + "listeners:\n  web: {port: 8080.0}\n",
                     ["lambdad.yaml:7:15: listeners.web.port: expected integer, got number 8080.0 (write 8080)"],
                     id="float-port"),
        pytest.param(with_event("sqs: {queue: q, batch_size: 5.0}", "queues:\n  q: {}\n"),
                     ["lambdad.yaml:7:37: functions.f.events[0].sqs.batch_size: expected integer, got number 5.0 "
                      "(write 5)"], id="float-batch-size"),
        pytest.param(BASE + "    async: {maximum_retry_attempts: 1.0}\n",
                     ["lambdad.yaml:6:37: functions.f.async.maximum_retry_attempts: expected integer, got number 1.0 "
                      "(write 1)"], id="float-retries"),
        pytest.param(with_event("alb: {listener: web, priority: false}", "listeners:\n  web: {}\n"),
                     ["lambdad.yaml:7:40: functions.f.events[0].alb.priority: expected integer, got boolean False"],
                     id="bool-priority"),
        pytest.param(BASE + "concurrency: 1.0e+400\n",
                     ["lambdad.yaml:6:14: concurrency: inf is not a finite number"], id="inf-concurrency"),
        pytest.param(BASE + "    environment: {AB: .nan}\n",
                     ["lambdad.yaml:6:23: functions.f.environment.AB: nan is not a finite number"], id="nan-env"),
        pytest.param(BASE.replace("./functions", '"./func\\0tions"'),
                     ["lambdad.yaml:5:11: functions.f.code: './func\\x00tions' is not a path: it contains a NUL "
                      "character"], id="nul-code"),
        pytest.param(BASE + 'buckets:\n  bkt: {path: "a\\0b"}\n',
                     ["lambdad.yaml:7:15: buckets.bkt.path: 'a\\x00b' is not a path: it contains a NUL character"],
                     id="nul-bucket"),
        pytest.param(BASE + '    async: {on_failure: {folder: "a\\0b"}}\n',
                     ["lambdad.yaml:6:34: functions.f.async.on_failure.folder: 'a\\x00b' is not a path: it contains "
                      "a NUL character"], id="nul-folder"),
        pytest.param(BASE + 'listeners:\n  web: {host: "a\\0b"}\n',
                     ["lambdad.yaml:7:15: listeners.web.host: 'a\\x00b' is not a host name or IP address"],
                     id="nul-host"),
        pytest.param(BASE + f"listeners:\n  web: {{host: {'a' * 64}.local}}\n",
                     [f"lambdad.yaml:7:15: listeners.web.host: '{'a' * 54}...' is not an IP address or a host "
                      "name (labels of 1 to 63 letters, digits, - or _)"], id="host-label-too-long"),
        pytest.param(with_event("schedule: {name: s, expression: 'rate(1 minute)', input: {a: .nan}}"),
                     ["lambdad.yaml:7:70: functions.f.events[0].schedule.input.a: nan has no JSON form"],
                     id="nan-input"),
        pytest.param(with_event("schedule: {name: s, expression: 'rate(1 minute)', input: {on: 2024-01-01}}"),
                     ["lambdad.yaml:7:71: functions.f.events[0].schedule.input.on: datetime.date(2024, 1, 1) has no "
                      "JSON form (quote it to pass it as a string)"], id="date-input"),
        pytest.param(with_event("schedule: {name: s, expression: 'rate(1 minute)', input: !!binary aGk=}"),
                     ["lambdad.yaml:7:66: functions.f.events[0].schedule.input: b'hi' has no JSON form"],
                     id="binary-input"),
        pytest.param(with_event(f"schedule: {{name: s, expression: 'rate({BIG} minutes)'}}"),
                     ["lambdad.yaml:7:41: functions.f.events[0].schedule.expression: 'rate(99999999999999999999999999"
                      "99999999999999999999999...': a rate is at most 36500 days (100 years) here"], id="huge-rate"),
        pytest.param(with_event("schedule: {name: s, expression: 'rate(36501 days)'}"),
                     ["lambdad.yaml:7:41: functions.f.events[0].schedule.expression: 'rate(36501 days)': a rate is at "
                      "most 36500 days (100 years) here"], id="rate-over-100-years"),
        pytest.param(BASE + "    description: 2024-02-30\n",
                     ["lambdad.yaml:6:18: functions.f.description: '2024-02-30' cannot be read as a YAML timestamp: "
                      "day is out of range for month"], id="impossible-date"),
        pytest.param(BASE + "    <<: 5\n",
                     ["lambdad.yaml:6:9: functions.f: a merge key (<<) takes a mapping or a list of mappings"],
                     id="bad-merge"),
        pytest.param(with_event("schedule: {name: s, expression: 'rate(1 minute)', input: "
                                + "[" * 100 + "]" * 100 + "}"),
                     ["lambdad.yaml:7:124: functions.f.events[0].schedule.input" + "[0]" * 58
                      + ": nested more than 64 levels deep"], id="deep-nesting"),
        pytest.param(BASE + '    description: {"a\\nb": 1}\n"x\\ny": 1\n',
                     ["lambdad.yaml:6:18: functions.f.description: expected string, got object {'a\\nb': 1}",
                      "lambdad.yaml:7:1: 'x\\ny': unknown key 'x\\ny'"],
                     id="newlines-stay-escaped"),
        pytest.param(BASE + "region: \x07\n",
                     ["lambdad.yaml:6:9: YAML error: unacceptable character '\\x07': control characters are not "
                      "allowed"], id="control-character"),
    ],
)
def test_hostile_values_are_located_problems(project: Path, text: str, expected: list[str]):
    assert problems_of(project, text) == expected


def test_zero_is_a_setting_not_a_missing_value(project: Path):
    text = BASE + "queues:\n  q: {visibility_timeout: 0, delay: -0.0}\n"
    manifest, problems = parse_manifest(text, project / "lambdad.yaml", {})
    assert problems == [] and manifest is not None
    q = manifest.queues["q"]
    assert (q.visibility_timeout_s, q.delay_s) == (0.0, 0.0) and str(q.delay_s) == "0.0"  # not -0.0


def test_merges_of_merges_stay_linear(project: Path):
    levels = ["a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for n in range(1, 13):  # each level merges the one below ten times: 10**13 pairs if each were walked
        levels.append(f"a{n}: &a{n} {{<<: [" + ", ".join([f"*a{n - 1}"] * 10) + "]}")
    data, _, problems = load_yaml("\n".join(levels) + "\n", "lambdad.yaml", {})
    assert problems == []
    assert data["a12"] == {f"k{i}": i for i in range(10)}


def test_own_keys_win_over_merged_ones_without_a_duplicate_error(project: Path):
    text = BASE + "    <<: {timeout: 5, memory: 256}\n    timeout: 6\n"
    manifest, problems = parse_manifest(text, project / "lambdad.yaml", {})
    assert problems == []
    assert (manifest.functions["f"].timeout_s, manifest.functions["f"].memory_mb) == (6, 256)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"version: 1\nfunctions:\n  f: {handler: app.h\xff\xfendler}\n",
                     "lambdad.yaml:3:21: the manifest is not UTF-8 text (byte 0xff)", id="not-utf8"),
        pytest.param(bytes(range(256)) * 4, "lambdad.yaml:2:118: the manifest is not UTF-8 text "
                     "(byte 0x80)", id="garbage-bytes"),
        pytest.param(b"", "lambdad.yaml: the manifest is empty", id="empty"),
        pytest.param(b"# only a comment\n", "lambdad.yaml: the manifest is empty", id="only-comments"),
    ],
)
def test_unreadable_files_are_one_problem(project: Path, content: bytes, expected: str):
    path = project / "lambdad.yaml"
    path.write_bytes(content)
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert e.value.problems == [expected]


def test_a_folder_or_a_fifo_is_not_a_manifest(project: Path):
    (project / "lambdad.yaml").mkdir()
    with pytest.raises(ManifestError) as e:
        load_manifest(project / "lambdad.yaml")
    assert e.value.problems == ["lambdad.yaml: cannot read manifest: it is a folder, not a file"]
    os.mkfifo(project / "fifo.yaml")  # reading would block a reload forever
    with pytest.raises(ManifestError) as e:
        load_manifest(project / "fifo.yaml")
    assert e.value.problems == ["fifo.yaml: cannot read manifest: it is not a regular file"]
