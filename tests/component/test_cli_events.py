"""`lambdad event list|generate` and `lambdad invoke --payload -` through `main(argv)` in-process: the
sample events, their errors, and what invoke makes of stdin (a real worker runs the handler)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.component.cli import run_cli
from tests.fixtures.manifests import THUMB_MANIFEST
from tests.fixtures.projects import project_with

SOURCES = ["s3-put", "s3-delete", "s3-batch", "schedule", "alb", "sqs", "kinesis", "dynamodb",
           "cloudfront-viewer-request", "cloudfront-origin-request", "cloudfront-origin-response",
           "cloudfront-viewer-response", "cognito-pre-signup", "cognito-pre-authentication",
           "cognito-post-authentication", "cognito-post-confirmation", "cognito-pre-token-generation",
           "cognito-custom-message", "cognito-define-auth-challenge", "cognito-create-auth-challenge",
           "cognito-verify-auth-challenge", "cognito-user-migration", "lex", "alexa", "firehose", "stepfunctions"]


#: A project whose `thumb` function returns the event it was given.
project = project_with(THUMB_MANIFEST, record_file=None)


def test_event_list_shows_every_source_with_its_parameters(tmp_path: Path):
    done = run_cli(["event", "list"], cwd=tmp_path)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "PARAMETERS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(SOURCES) <= set(rows)
    assert rows["s3-put"].endswith("bucket, key, size, etag")


def test_event_list_json(tmp_path: Path):
    done = run_cli(["event", "list", "--json"], cwd=tmp_path)
    assert done.code == 0, done.err
    listed = {s["name"]: s for s in json.loads(done.out)}
    assert set(SOURCES) <= set(listed)
    assert listed["sqs"]["parameters"]["queue"]["default"] == "sample-queue"
    assert listed["sqs"]["description"]


def test_event_generate_prints_the_payload_indented(tmp_path: Path):
    done = run_cli(["event", "generate", "s3-put", "--set", "bucket=uploads", "--set", "key=a b.jpg",
                    "--set", "Records.0.s3.object.size=10"], cwd=tmp_path)
    assert done.code == 0, done.err
    assert done.out.startswith('{\n  "Records": [\n    {\n')
    obj = json.loads(done.out)["Records"][0]["s3"]
    assert (obj["bucket"]["name"], obj["object"]["key"], obj["object"]["size"]) == ("uploads", "a+b.jpg", 10)


@pytest.mark.parametrize(("args", "message"), [
    (["s3-pt"], "lambdad: unknown event source 's3-pt' (did you mean 's3-put'"),
    (["s3-put", "--set", "bucket"], "lambdad: --set 'bucket': expected NAME=VALUE"),
    (["s3-put", "--set", "Records.4.eventName=x"], "lambdad: --set Records.4.eventName: Records has 1 item(s)"),
    (["cloudfront-viewer-response", "--set", "status=abc"], "lambdad: --set status: 'abc' is not a whole number"),
])
def test_event_generate_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    done = run_cli(["event", "generate", *args], cwd=tmp_path)
    assert done.code == 2
    assert done.out == ""
    assert done.err.startswith(message) and done.err.count("\n") == 1, done.err


def test_a_generated_event_given_to_invoke_on_stdin_reaches_the_handler(project: Path):
    generated = run_cli(["event", "generate", "s3-put", "--set", "bucket=uploads", "--set", "key=a.jpg"],
                        cwd=project)
    assert generated.code == 0
    invoke = run_cli(["invoke", "thumb", "--payload", "-"], cwd=project, stdin=generated.out)
    assert invoke.code == 0, invoke.err
    seen = json.loads(invoke.out)["Records"][0]
    assert seen["eventName"] == "ObjectCreated:Put"
    assert (seen["s3"]["bucket"]["name"], seen["s3"]["object"]["key"]) == ("uploads", "a.jpg")
    assert json.loads(invoke.err) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_invoke_with_an_empty_stdin_sends_an_empty_object(project: Path, stdin: str):
    done = run_cli(["invoke", "thumb", "--payload", "-"], cwd=project, stdin=stdin)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {}


def test_invoke_with_bad_json_on_stdin_is_one_line_and_exit_2(project: Path):
    done = run_cli(["invoke", "thumb", "--payload", "-"], cwd=project, stdin="{not json")
    assert done.code == 2
    assert done.err.startswith("lambdad: Could not parse request body into json") and done.err.count("\n") == 1
