"""The API's boundary on a running daemon, through real sockets and clients: an aborted upload runs
nothing, other host names and web pages are refused, and boto3 and the aws CLI work on localhost and
127.0.0.1 alike."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import FIXTURE_FUNCTIONS, all_settled, daemon_info, json_lines, wait_for, write_manifest
from tests.integration.test_daemon import Running, serving
from tests.integration.test_http_api import aws, client

MANIFEST = """
version: 1
region: eu-west-1
account: "111122223333"
defaults:
  environment: {RECORD_FILE: "${RECORD_FILE}"}
queues:
  jobs: {}
functions:
  recorder:
    handler: recorder.handler
    code: ./functions
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("boundary")
    shutil.copytree(FIXTURE_FUNCTIONS, folder / "functions")
    old = os.environ.get("RECORD_FILE")
    os.environ["RECORD_FILE"] = str(folder / "received.jsonl")
    write_manifest(folder, MANIFEST)
    yield folder
    if old is None:
        os.environ.pop("RECORD_FILE", None)
    else:
        os.environ["RECORD_FILE"] = old


@pytest.fixture(scope="module")
def daemon(project: Path) -> Iterator[Running]:
    with serving(project, "--allow-host", "myapp.test") as running:
        yield running


@pytest.fixture(scope="module")
def api(daemon: Running, project: Path) -> str:
    return daemon_info(project)["api"]


def events_received(project: Path) -> list[dict]:
    return [r["event"] for r in json_lines(project / "received.jsonl")]


def curl(*args: str) -> tuple[int, str]:
    done = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                          timeout=30)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_an_aborted_upload_is_never_run(api: str, project: Path):
    where = urlsplit(api)
    for kind in ("Event", "RequestResponse"):
        with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
            sock.sendall(f"POST /2015-03-31/functions/recorder/invocations HTTP/1.1\r\nHost: {where.netloc}\r\n"
                         f"X-Amz-Invocation-Type: {kind}\r\nContent-Length: 500\r\n\r\n".encode()
                         + b'{"aborted": "yes"}\n')  # 19 bytes of 500, then the client goes away
    response = client(api).invoke(FunctionName="recorder", InvocationType="Event", Payload=b'{"whole": 1}')
    assert response["StatusCode"] == 202
    wait_for(lambda: {"whole": 1} in events_received(project) and all_settled(project), what="the whole event")
    assert not any("aborted" in e for e in events_received(project))


def test_other_host_names_get_403_and_no_secrets(api: str):
    status, body = curl("-H", "Host: evil.example", f"{api}/2015-03-31/functions/recorder")
    assert status == 403 and json.loads(body)["Type"] == "User" and "RECORD_FILE" not in body
    status, body = curl("-H", "Host: evil.example:9001", "-H", "X-Amz-Target: AmazonSQS.GetQueueUrl", "-H",
                        "Content-Type: application/x-amz-json-1.0", "--data", '{"QueueName": "jobs"}', api)
    assert status == 403 and "QueueUrl" not in body
    status, _ = curl("-H", "Host: myapp.test", f"{api}/2015-03-31/functions/recorder")  # --allow-host
    assert status == 200


def test_a_cross_site_simple_request_runs_nothing(api: str, project: Path):
    status, body = curl("-H", "Origin: http://evil.example", "-H", "Content-Type: text/plain", "--data",
                        '{"csrf": 1}', f"{api}/2015-03-31/functions/recorder/invocations")
    assert status == 403 and json.loads(body)["Message"]
    status, _ = curl("-X", "OPTIONS", "-i", "-H", "Origin: http://evil.example", "-H",
                     "Access-Control-Request-Method: POST", f"{api}/2015-03-31/functions/recorder/invocations")
    assert status == 403
    client(api).invoke(FunctionName="recorder", Payload=b'{"after": 1}')
    assert {"csrf": 1} not in events_received(project)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
def test_boto3_and_the_aws_cli_work_on_every_local_name(api: str, host: str, tmp_path: Path):
    endpoint = f"http://{host}:{urlsplit(api).port}"
    response = client(endpoint).invoke(FunctionName="recorder", Payload=b'{"via": "boto3"}')
    assert json.loads(response["Payload"].read()) == {"handled": {"via": "boto3"}}
    done = aws("list-functions", api=endpoint, folder=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [f["FunctionName"] for f in json.loads(done.stdout)["Functions"]] == ["recorder"]
