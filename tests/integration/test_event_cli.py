"""`lambdad event generate | lambdad invoke --payload -` as a user runs it: real subprocesses, a real
pipe between them (and one that closes early), a real worker running the handler. The commands'
own cases run in-process in tests/component/test_cli_events.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.fixtures.manifests import THUMB_MANIFEST
from tests.fixtures.projects import project_with
from tests.helpers import lambdad_cmd

#: A project whose `thumb` function returns the event it was given.
project = project_with(THUMB_MANIFEST, record_file=None)


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
