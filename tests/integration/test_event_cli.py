"""`lambdad event list|generate` and `lambdad invoke --payload -` as a user runs them: real subprocesses,
a real pipe between them, a real worker running the handler."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import lambdad_cmd, run_cli, write_manifest

MANIFEST = """
version: 1
functions:
  thumb:
    handler: noop.handler
    code: ./functions
    timeout: 5
"""

SOURCES = ["s3-put", "s3-delete", "s3-batch", "schedule", "alb", "sqs", "kinesis", "dynamodb",
           "cloudfront-viewer-request", "cloudfront-origin-request", "cloudfront-origin-response",
           "cloudfront-viewer-response", "cognito-pre-signup", "cognito-pre-authentication",
           "cognito-post-authentication", "cognito-post-confirmation", "cognito-pre-token-generation",
           "cognito-custom-message", "cognito-define-auth-challenge", "cognito-create-auth-challenge",
           "cognito-verify-auth-challenge", "cognito-user-migration", "lex", "alexa", "firehose", "stepfunctions"]


@pytest.fixture
def project(tmp_path: Path, functions_dir: Path) -> Path:
    """A project whose `thumb` function returns the event it was given."""
    write_manifest(tmp_path, MANIFEST)
    return tmp_path


def test_event_list_shows_every_source_with_its_parameters(tmp_path: Path):
    done = run_cli("event", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "PARAMETERS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(SOURCES) <= set(rows)
    assert rows["s3-put"].endswith("bucket, key, size, etag")


def test_event_list_json(tmp_path: Path):
    done = run_cli("event", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {s["name"]: s for s in json.loads(done.stdout)}
    assert set(SOURCES) <= set(listed)
    assert listed["sqs"]["parameters"]["queue"]["default"] == "sample-queue"
    assert listed["sqs"]["description"]


def test_event_generate_prints_the_payload_indented(tmp_path: Path):
    done = run_cli("event", "generate", "s3-put", "--set", "bucket=uploads", "--set", "key=a b.jpg",
                   "--set", "Records.0.s3.object.size=10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('{\n  "Records": [\n    {\n')
    obj = json.loads(done.stdout)["Records"][0]["s3"]
    assert (obj["bucket"]["name"], obj["object"]["key"], obj["object"]["size"]) == ("uploads", "a+b.jpg", 10)


@pytest.mark.parametrize(("args", "message"), [
    (["s3-pt"], "lambdad: unknown event source 's3-pt' (did you mean 's3-put'"),
    (["s3-put", "--set", "bucket"], "lambdad: --set 'bucket': expected NAME=VALUE"),
    (["s3-put", "--set", "Records.4.eventName=x"], "lambdad: --set Records.4.eventName: Records has 1 item(s)"),
    (["cloudfront-viewer-response", "--set", "status=abc"], "lambdad: --set status: 'abc' is not a whole number"),
])
def test_event_generate_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    done = run_cli("event", "generate", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr


def test_a_generated_event_piped_into_invoke_reaches_the_handler(project: Path):
    env = os.environ.copy()
    generate = subprocess.Popen(lambdad_cmd("event", "generate", "s3-put", "--set", "bucket=uploads", "--set",
                                            "key=a.jpg"), cwd=project, stdout=subprocess.PIPE, env=env)
    assert generate.stdout is not None
    try:
        invoke = subprocess.run(lambdad_cmd("invoke", "thumb", "--payload", "-"), cwd=project, stdin=generate.stdout,
                                capture_output=True, text=True, timeout=60, env=env)
    finally:
        generate.stdout.close()
        code = generate.wait(timeout=60)
    assert code == 0
    assert invoke.returncode == 0, invoke.stderr
    seen = json.loads(invoke.stdout)["Records"][0]
    assert seen["eventName"] == "ObjectCreated:Put"
    assert (seen["s3"]["bucket"]["name"], seen["s3"]["object"]["key"]) == ("uploads", "a.jpg")
    assert json.loads(invoke.stderr) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_invoke_with_an_empty_stdin_sends_an_empty_object(project: Path, stdin: str):
    done = subprocess.run(lambdad_cmd("invoke", "thumb", "--payload", "-"), cwd=project, input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}


def test_invoke_with_bad_json_on_stdin_is_one_line_and_exit_2(project: Path):
    done = subprocess.run(lambdad_cmd("invoke", "thumb", "--payload", "-"), cwd=project, input="{not json",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("lambdad: Could not parse request body into json") and done.stderr.count("\n") == 1


def test_a_reader_that_goes_away_early_is_not_an_error(tmp_path: Path):
    """`lambdad event generate ... | head -1`: the pipe closes before the payload is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command writes, so the write fails every time
    try:
        done = subprocess.run(lambdad_cmd("event", "generate", "s3-put"), cwd=tmp_path, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
