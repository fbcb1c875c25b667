"""The Lambda Invoke API of a running daemon, through the real clients: boto3, the aws CLI, curl,
and `lambdad invoke` itself."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.config import Config

from tests.helpers import aws_cli, daemon_info, json_lines, run_cli, wait_for, write_manifest
from tests.integration.test_daemon import Running, serving

MANIFEST = """
version: 1
region: eu-west-1
account: "111122223333"
defaults:
  environment: {RECORD_FILE: "${RECORD_FILE}"}
functions:
  behave:
    handler: behave.handler
    code: ./functions
    description: does what the event says
  recorder:
    handler: recorder.handler
    code: ./functions
  single:
    handler: behave.handler
    code: ./functions
    reserved_concurrency: 1
  brief:
    handler: behave.handler
    code: ./functions
    timeout: 1
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import shutil

    from tests.helpers import FIXTURE_FUNCTIONS

    folder = tmp_path_factory.mktemp("api")
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
    with serving(project) as running:
        yield running


@pytest.fixture(scope="module")
def api(daemon: Running, project: Path) -> str:
    return daemon_info(project)["api"]


def client(api: str, **config):
    return boto3.client(
        "lambda", endpoint_url=api, region_name="eu-west-1", aws_access_key_id="any", aws_secret_access_key="any",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def received(project: Path) -> list[dict]:
    return json_lines(project / "received.jsonl")


def call(api: str, name: str = "behave", **event):
    response = client(api).invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


def test_boto3_invoke_returns_the_result_and_the_log_tail(api: str):
    response = client(api).invoke(FunctionName="behave", Payload=b'{"action": "log"}', LogType="Tail")
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert json.loads(response["Payload"].read()) == "logged"
    assert "FunctionError" not in response
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id} Version: $LATEST" in tail and "printed line" in tail
    assert f"REPORT RequestId: {request_id}\tDuration: " in tail


def test_warm_environments_serve_repeated_calls(api: str):
    _, first = call(api)
    _, second = call(api)
    assert first["pid"] == second["pid"] and second["calls"] == first["calls"] + 1


def test_a_function_error_is_a_200_with_the_error_document(api: str):
    response, body = call(api, action="raise", message="intentional")
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "intentional")
    assert body["requestId"] == response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize(
    ("event", "error_type", "message"),
    [
        ({"action": "sleep", "seconds": 5}, "Sandbox.Timedout", "Task timed out after 1.00 seconds"),
        ({"action": "allocate", "mb": 300}, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed"),
        ({"action": "exit", "code": 3}, "Runtime.ExitError", "Runtime exited with error: exit status 3"),
    ],
)
def test_a_lost_environment_is_reported_and_replaced(api: str, event: dict, error_type: str, message: str):
    _, before = call(api, "brief")
    response, body = call(api, "brief", **event)
    assert response["FunctionError"] == "Unhandled" and body["errorType"] == error_type
    assert body["errorMessage"].endswith(message)
    _, after = call(api, "brief")
    assert after["pid"] != before["pid"] and after["calls"] == 1  # a cold start in a new environment


def test_unknown_functions_raise_resource_not_found(api: str):
    with pytest.raises(client(api).exceptions.ResourceNotFoundException) as e:
        client(api).invoke(FunctionName="nope", Payload=b"{}")
    assert e.value.response["Error"]["Message"] == "Function not found: arn:aws:lambda:eu-west-1:111122223333:function:nope"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_busy_function_raises_too_many_requests(api: str, tmp_path: Path):
    release = tmp_path / "release"
    started = tmp_path / "started"
    t = threading.Thread(target=call, args=(api, "single"),
                         kwargs={"action": "touch_then_wait", "started": str(started), "path": str(release)})
    t.start()
    try:
        wait_for(started.exists, what="the first call to be running")
        lam = client(api)
        with pytest.raises(lam.exceptions.TooManyRequestsException) as e:
            lam.invoke(FunctionName="single", Payload=b"{}")
        assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        release.touch()
        t.join(10)


@pytest.mark.parametrize(
    ("payload", "kind", "error", "status"),
    [
        (b"{not json", "RequestResponse", "InvalidRequestContentException", 400),
        (b"[" + b"1," * 3_200_000 + b"1]", "RequestResponse", "RequestEntityTooLargeException", 413),
        (b'"' + b"x" * (1024 * 1024) + b'"', "Event", "RequestEntityTooLargeException", 413),
    ],
)
def test_bad_payloads_are_refused_with_lambdas_errors(api: str, payload: bytes, kind: str, error: str, status: int):
    lam = client(api)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lam.invoke(FunctionName="recorder", Payload=payload, InvocationType=kind)
    assert e.value.response["Error"]["Code"] == error
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_event_invocations_are_queued_and_run(api: str, project: Path):
    response = client(api).invoke(FunctionName="recorder", InvocationType="Event", Payload=b'{"async": 1}')
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    got = wait_for(lambda: [r for r in received(project) if r["event"] == {"async": 1}], what="the async run")
    assert got[0]["request_id"] == request_id  # the id returned is the one the handler sees


def test_dry_run_checks_without_running(api: str, project: Path):
    lam = client(api)
    assert lam.invoke(FunctionName="recorder", InvocationType="DryRun", Payload=b'{"dry": 1}')["StatusCode"] == 204
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="recorder", InvocationType="DryRun", Payload=b"{bad")
    lam.invoke(FunctionName="recorder", InvocationType="Event", Payload=b'{"after": "dry"}')
    wait_for(lambda: any(r["event"] == {"after": "dry"} for r in received(project)), what="the event after it")
    assert not any(r["event"] == {"dry": 1} for r in received(project))  # the dry run queued nothing


@pytest.mark.parametrize(
    "name",
    ["behave", "behave:$LATEST", "arn:aws:lambda:eu-west-1:111122223333:function:behave",
     "arn:aws:lambda:eu-west-1:111122223333:function:behave:$LATEST", "111122223333:function:behave"],
)
def test_every_name_form_reaches_the_function(api: str, name: str):
    _, body = call(api, name, action="context")
    assert body["function_name"] == "behave"
    qualified = name.endswith(":$LATEST")
    assert body["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:behave" + (
        ":$LATEST" if qualified else "")


@pytest.mark.parametrize(
    ("name", "qualifier", "error"),
    [
        ("behave", "live", "ResourceNotFoundException"),
        ("behave:live", None, "ResourceNotFoundException"),
        ("arn:aws:lambda:us-east-1:111122223333:function:behave", None, "ResourceNotFoundException"),
        ("behave:$LATEST", "other", "InvalidParameterValueException"),
    ],
)
def test_unknown_qualifiers_and_other_regions_are_refused(api: str, name: str, qualifier: str | None, error: str):
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(api).invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert e.value.response["Error"]["Code"] == error


def test_client_context_reaches_the_handler(api: str):
    context = base64.b64encode(json.dumps({"custom": {"user": "ada"}, "env": {"locale": "en"}}).encode()).decode()
    response = client(api).invoke(FunctionName="behave", Payload=b'{"action": "context"}', ClientContext=context)
    body = json.loads(response["Payload"].read())
    assert body["client_context"]["custom"] == {"user": "ada"} and body["client_context"]["env"] == {"locale": "en"}


def test_list_and_get_functions_show_the_manifest(api: str):
    lam = client(api)
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == ["behave", "recorder", "single", "brief"]
    page = lam.list_functions(MaxItems=2)
    assert len(page["Functions"]) == 2 and [f["FunctionName"] for f in lam.list_functions(
        Marker=page["NextMarker"])["Functions"]] == ["single", "brief"]
    got = lam.get_function(FunctionName="single")
    config = got["Configuration"]
    assert (config["FunctionArn"], config["Handler"], config["Timeout"], config["MemorySize"]) == (
        "arn:aws:lambda:eu-west-1:111122223333:function:single", "behave.handler", 3, 128)
    assert config["Runtime"].startswith("python3.") and config["State"] == "Active"
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert lam.get_function_configuration(FunctionName="behave")["Description"] == "does what the event says"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="nope")


def test_an_sdk_retry_of_a_slow_call_does_not_run_it_twice(api: str, project: Path):
    """boto3 sends a call again when it outlasts its read timeout; the retry gets the first run's answer."""
    lam = boto3.client(
        "lambda", endpoint_url=api, region_name="eu-west-1", aws_access_key_id="any", aws_secret_access_key="any",
        config=Config(read_timeout=1, retries={"max_attempts": 2, "mode": "legacy"}),
    )
    response = lam.invoke(FunctionName="recorder", Payload=json.dumps({"sleep": 1.6, "once": True}).encode())
    assert json.loads(response["Payload"].read()) == {"handled": {"sleep": 1.6, "once": True}}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1  # the SDK did send it twice
    assert len([r for r in received(project) if r["event"].get("once")]) == 1


def aws(*args: str, api: str, folder: Path, region: str = "eu-west-1") -> subprocess.CompletedProcess:
    return aws_cli().run("lambda", *args, "--endpoint-url", api, folder=folder, region=region)


def test_the_aws_cli_invokes(api: str, project: Path, tmp_path: Path):
    cli = aws_cli()
    out = tmp_path / "out.json"
    done = aws("invoke", "--function-name", "behave", *cli.payload('{"action": "log"}'), "--log-type", "Tail",
               str(out), api=api, folder=tmp_path)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["StatusCode"] == 200 and status["ExecutedVersion"] == "$LATEST"
    assert "printed line" in base64.b64decode(status["LogResult"]).decode()
    assert json.loads(out.read_text()) == "logged"
    done = aws("invoke", "--function-name", "recorder", "--invocation-type", "Event", *cli.payload('{"cli": 1}'),
               str(out), api=api, folder=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["StatusCode"] == 202
    wait_for(lambda: any(r["event"] == {"cli": 1} for r in received(project)), what="the CLI's async event")
    done = aws("invoke", "--function-name", "nope", str(out), api=api, folder=tmp_path)
    assert done.returncode == cli.service_error and "ResourceNotFoundException" in done.stderr
    done = aws("list-functions", api=api, folder=tmp_path)
    assert [f["FunctionName"] for f in json.loads(done.stdout)["Functions"]] == ["behave", "recorder", "single",
                                                                               "brief"]


def test_the_documented_aws_cli_line_works_as_written(api: str, daemon: Running, tmp_path: Path):
    """`aws lambda invoke ... --cli-binary-format raw-in-base64-out --payload '{...}' --region eu-west-2 out.json`,
    as AWS's docs write it for the CLI v2 (v1 knows no --cli-binary-format: its form is the same without it).
    The call is signed for another region than the manifest's: it is served, with one warning."""
    cli = aws_cli()
    line = ["lambda", "invoke", "--function-name", "behave", *cli.payload('{"action": "echo"}'),
            "--region", "eu-west-2", "out.json", "--endpoint-url", api]
    for _ in range(2):
        done = subprocess.run([cli.path, *line], capture_output=True, text=True, cwd=tmp_path,
                              env=cli.env(tmp_path), timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["StatusCode"] == 200
        assert json.loads((tmp_path / "out.json").read_text())["event"] == {"action": "echo"}
    warned = wait_for(lambda: [line for line in daemon.lines if "eu-west-2" in line], what="the region warning")
    assert len(warned) == 1 and "eu-west-1" in warned[0]  # once for the region, not once per call


def test_curl_sends_a_chunked_body(api: str):
    done = subprocess.run(
        ["curl", "-s", "-i", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", '{"action": "echo"}',
         f"{api}/2015-03-31/functions/behave/invocations"], capture_output=True, text=True, timeout=30)
    head, _, body = done.stdout.partition("\n\n")  # (text mode reads CRLF as LF)
    assert head.startswith("HTTP/1.1 200") and "x-amz-executed-version: $LATEST" in head
    assert json.loads(body)["event"] == {"action": "echo"}


def test_lambdad_invoke_uses_the_running_daemon(project: Path, daemon: Running):
    first = run_cli("invoke", "behave", "--payload", '{"action": "echo"}', cwd=project)
    second = run_cli("invoke", "behave", "--payload", '{"action": "echo"}', "--log-type", "Tail", cwd=project)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["pid"] == json.loads(second.stdout)["pid"]  # the daemon's warm environment
    assert "LogResult" in json.loads(second.stderr)
    queued = run_cli("invoke", "recorder", "--invocation-type", "Event", "--payload", '{"via": "cli"}', cwd=project)
    assert queued.returncode == 0 and json.loads(queued.stdout) == {"StatusCode": 202}
    wait_for(lambda: any(r["event"] == {"via": "cli"} for r in received(project)), what="the CLI's event")
    bad = run_cli("invoke", "behave", "--payload", "{nope", cwd=project)
    assert bad.returncode == 2 and bad.stderr.startswith("lambdad: InvalidRequestContentException: ")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_binding_beyond_loopback_needs_expose(tmp_path: Path, functions_dir: Path):
    write_manifest(tmp_path, """
        version: 1
        api: {host: 0.0.0.0, port: 0}
        functions:
          f: {handler: noop.handler, code: ./functions}
    """)
    refused = run_cli("up", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == ("lambdad: the API would listen on 0.0.0.0, which is not a loopback address: anyone "
                              "who can reach it could run your functions; pass --expose to allow it\n")
    exposed = Running(tmp_path, "--expose")
    try:
        exposed.wait_line("ready in ")
        assert any(line.startswith("warning: the API listens on 0.0.0.0") for line in exposed.lines)
    finally:
        code = exposed.stop(signal.SIGTERM)
    assert code == 0
