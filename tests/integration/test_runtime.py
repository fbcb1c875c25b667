"""The worker runtime end to end with real worker processes: every outcome Lambda reports."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path

import psutil
import pytest

from lambdad.errors import TooManyRequests
from lambdad.logs import LogBook, read_records
from lambdad.manifest import load_manifest
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from tests.helpers import FakeClock, wait_for, write_manifest

MANIFEST = """
version: 1
region: eu-central-1
account: "111122223333"
concurrency: 4
functions:
  behave:
    handler: behave.handler
    code: ./functions
    timeout: 1
    memory: 128
    environment: {STAGE: test}
  single:
    handler: behave.handler
    code: ./functions
    reserved_concurrency: 1
  closed:
    handler: behave.handler
    code: ./functions
    reserved_concurrency: 0
  broken_import: {handler: broken_import.handler, code: ./functions}
  init_raises: {handler: init_raises.handler, code: ./functions}
  syntax_error: {handler: syntax_error.handler, code: ./functions}
  no_handler: {handler: no_handler.handler, code: ./functions}
"""


@pytest.fixture
def runtime(tmp_path: Path, functions_dir: Path):
    manifest = load_manifest(write_manifest(tmp_path, MANIFEST), env={})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), inherited_env={"PATH": os.environ["PATH"]})
    yield functions
    pids = [pid for pool in functions.pools.values() for pid in pool.worker_pids()]
    functions.close()
    for pid in pids:  # no environment outlives close()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def call(functions: Functions, name: str = "behave", **event) -> tuple:
    result = functions.invoke(name, json.dumps(event).encode())
    return result, json.loads(result.payload) if result.payload[:1] in (b"{", b"[", b'"') else result.payload


def log_lines(runtime: Functions, function: str = "behave") -> list[str]:
    runtime.flush_logs()
    return [r.message for r in read_records(runtime.logbook.folder, function)]


def test_success_with_lambdas_context_and_environment(runtime: Functions, tmp_path: Path):
    result, body = call(runtime, action="context")
    assert result.outcome is Outcome.success and result.function_error is None
    assert body["function_name"] == "behave"
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == "arn:aws:lambda:eu-central-1:111122223333:function:behave"
    assert body["memory_limit_in_mb"] == "128"  # a string, as in AWS's runtime
    assert body["aws_request_id"] == result.request_id
    assert body["log_group_name"] == "/aws/lambda/behave"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", body["log_stream_name"])
    assert 0 < body["remaining_ms"] <= 1000
    assert body["identity"] == [None, None]
    assert body["client_context"] is None
    env = body["environ"]
    assert env["STAGE"] == "test"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-central-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "behave"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["_HANDLER"] == "behave.handler"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "functions")
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream_name"]
    assert body["cwd"] == str(tmp_path / "functions") == body["sys_path0"]


def test_client_context_and_identity_reach_the_context(runtime: Functions):
    cc = json.dumps({"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"app_title": "demo"}})
    ident = json.dumps({"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"})
    result = runtime.invoke("behave", b'{"action": "context"}', client_context=cc, identity=ident)
    body = json.loads(result.payload)
    assert body["client_context"] == {"custom": {"k": "v"}, "env": {"e": "1"}, "app_title": "demo"}
    assert body["identity"] == ["id-1", "pool-1"]


def test_warm_environment_is_reused_and_cold_start_reports_init(runtime: Functions, tmp_path: Path):
    first, b1 = call(runtime)
    second, b2 = call(runtime)
    assert b1["pid"] == b2["pid"]
    assert (b1["calls"], b2["calls"]) == (1, 2)  # module globals survive between warm invocations
    assert first.init_ms is not None and first.init_ms > 0
    assert second.init_ms is None
    reports = [line for line in log_lines(runtime) if line.startswith("REPORT")]
    assert "Init Duration:" in reports[0] and "Init Duration:" not in reports[1]


def test_log_lines_are_lambdas_and_tagged_with_the_request_id(runtime: Functions, tmp_path: Path):
    result, _body = call(runtime, action="log")
    rid = result.request_id
    lines = log_lines(runtime)
    assert lines[0] == "module loaded"  # init output comes before START, as on Lambda
    assert lines[1] == f"START RequestId: {rid} Version: $LATEST"
    assert lines[2:4] == ["printed line", "to stderr"]
    level, stamp, logged_rid, message = lines[4].split("\t")
    assert (level, logged_rid, message) == ("[INFO]", rid, "logged info")
    assert stamp.endswith("Z") and len(stamp) == len("2020-01-31T22:12:58.534Z")
    assert lines[5] == f"END RequestId: {rid}"
    assert lines[6].startswith(f"REPORT RequestId: {rid}\tDuration: ") and lines[6].endswith("\t")
    assert "\tMemory Size: 128 MB\tMax Memory Used: " in lines[6]
    records = list(read_records(runtime.logbook.folder, "behave"))
    assert {r.request_id for r in records[1:]} == {rid}
    tail = result.log_tail.decode()
    assert tail.startswith("module loaded\nSTART RequestId") and tail.endswith("\t\n")


def test_handler_exception_is_an_unhandled_function_error_and_keeps_the_environment(runtime: Functions, tmp_path):
    _, before = call(runtime)
    result, body = call(runtime, action="raise", message="intentional failure")
    assert result.outcome is Outcome.error and result.function_error == "Unhandled"
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorMessage"] == "intentional failure"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == result.request_id
    assert body["stackTrace"][0].startswith(f'  File "{tmp_path / "functions" / "behave.py"}", line ')
    assert all("bootstrap.py" not in frame for frame in body["stackTrace"])
    error_line = next(line for line in log_lines(runtime) if line.startswith("[ERROR]"))
    assert error_line.startswith("[ERROR] ValueError: intentional failure\rTraceback (most recent call last):\r")
    assert "\u00a0\u00a0File" in error_line
    _, after = call(runtime)
    assert after["pid"] == before["pid"]


@pytest.mark.parametrize(
    ("function", "error_type", "message"),
    [
        ("broken_import", "Runtime.ImportModuleError",
         "Unable to import module 'broken_import': No module named 'module_that_does_not_exist'"),
        ("init_raises", "RuntimeError", "failed during init"),
        ("syntax_error", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_error': "),
        ("no_handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'no_handler'"),
    ],
)
def test_init_failures(runtime: Functions, tmp_path: Path, function: str, error_type: str, message: str):
    result, body = call(runtime, function)
    assert result.outcome is Outcome.init_error and result.function_error == "Unhandled"
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)
    assert body["requestId"] == ""  # init errors carry no request id, as on Lambda
    assert runtime.pool(function).idle == 0  # the environment is gone
    report = next(line for line in log_lines(runtime, function) if line.startswith("REPORT"))
    assert f"\tStatus: error\tError Type: {error_type}\t" in report
    again, _ = call(runtime, function)
    assert again.init_ms is not None  # every call retries the init: fix the code and it works


def test_an_import_error_points_at_the_line_that_imports(runtime: Functions, tmp_path: Path):
    _, body = call(runtime, "broken_import")
    (frame,) = body["stackTrace"]  # the handler's line only, not importlib's
    assert frame.startswith(f'  File "{tmp_path / "functions" / "broken_import.py"}", line 1, in <module>\n'
                            "    import module_that_does_not_exist  # noqa: F401\n")


def test_marshal_error(runtime: Functions):
    result, body = call(runtime, action="unserialisable")
    assert result.outcome is Outcome.error
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"] == "Unable to marshal response: Object of type object is not JSON serializable"


def test_exit_is_runtime_exit_error_and_replaces_the_environment(runtime: Functions, tmp_path: Path):
    _, before = call(runtime)
    result, body = call(runtime, action="exit", code=3)
    assert result.outcome is Outcome.crashed and result.function_error == "Unhandled"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3",
    }
    assert not psutil.pid_exists(before["pid"]) or psutil.Process(before["pid"]).status() == psutil.STATUS_ZOMBIE
    after, body_after = call(runtime)
    assert after.init_ms is not None and body_after["pid"] != before["pid"]


def test_killed_by_a_signal(runtime: Functions):
    result, body = call(runtime, action="signal", signal=11)
    assert result.outcome is Outcome.crashed
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: segmentation fault")


def test_timeout_kills_the_environment(runtime: Functions, tmp_path: Path):
    _, before = call(runtime)
    result, body = call(runtime, action="sleep", seconds=30)
    assert result.outcome is Outcome.timeout
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert result.duration_ms == 1000.0
    report = [line for line in log_lines(runtime) if line.startswith("REPORT")][-1]
    assert report.endswith("\tStatus: timeout\t") and "Duration: 1000.00 ms" in report
    wait_for(lambda: not psutil.pid_exists(before["pid"]), what="the timed-out worker to be gone")
    after, body_after = call(runtime)
    assert body_after["pid"] != before["pid"] and after.init_ms is not None


def test_out_of_memory_kills_the_environment(runtime: Functions, tmp_path: Path):
    result, body = call(runtime, action="allocate", mb=300)
    assert result.outcome is Outcome.out_of_memory
    assert body == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed",
    }
    assert result.max_memory_mb >= 128
    report = [line for line in log_lines(runtime) if line.startswith("REPORT")][-1]
    assert "\tStatus: error\tError Type: Runtime.OutOfMemory\t" in report
    ok, _ = call(runtime)
    assert ok.outcome is Outcome.success


def test_printing_megabytes_is_logged_and_does_not_block(runtime: Functions, tmp_path: Path):
    result, body = call(runtime, action="spew", lines=5000)  # about 5 MB through the pipe
    assert result.outcome is Outcome.success and body == "spewed"
    lines = log_lines(runtime)
    assert sum(1 for line in lines if line == "x" * 1000) == 5000
    assert len(result.log_tail) <= 4096


def test_response_over_6_mb_is_refused(runtime: Functions):
    result, body = call(runtime, action="big_result", bytes=7 * 1024 * 1024)
    assert result.outcome is Outcome.error
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert body["errorMessage"] == "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    ok, _ = call(runtime)
    assert ok.outcome is Outcome.success


def test_bytes_and_decimal_results(runtime: Functions):
    raw = runtime.invoke("behave", b'{"action": "bytes"}')
    assert raw.payload == b"raw-bytes"
    dec = runtime.invoke("behave", b'{"action": "decimal"}')
    assert json.loads(dec.payload) == {"int": 3, "float": 1.5}


def test_reserved_concurrency_throttles_synchronous_calls(runtime: Functions, tmp_path: Path):
    started, release = tmp_path / "started", tmp_path / "release"
    results = []
    event = json.dumps({"action": "touch_then_wait", "started": str(started), "path": str(release)}).encode()
    busy = threading.Thread(target=lambda: results.append(runtime.invoke("single", event)))
    busy.start()
    try:
        wait_for(started.exists, what="the first invocation to start")
        with pytest.raises(TooManyRequests) as info:
            runtime.invoke("single", b"{}")
        assert info.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert str(info.value) == "Rate Exceeded."
    finally:
        release.touch()
        busy.join(10)
    assert results[0].outcome is Outcome.success
    assert runtime.invoke("single", b"{}").outcome is Outcome.success  # the slot is free again


def test_reserved_concurrency_zero_throttles_everything(runtime: Functions):
    with pytest.raises(TooManyRequests):
        runtime.invoke("closed", b"{}")


def test_account_concurrency_is_shared_by_unreserved_functions(tmp_path: Path, functions_dir: Path):
    text = MANIFEST.replace("concurrency: 4", "concurrency: 2")  # 1 reserved by `single`, 1 shared
    manifest = load_manifest(write_manifest(tmp_path, text), env={})
    functions = Functions(manifest, LogBook(tmp_path / "logs"))
    started, release = tmp_path / "started", tmp_path / "release"
    event = json.dumps({"action": "touch_then_wait", "started": str(started), "path": str(release)}).encode()
    busy = threading.Thread(target=lambda: functions.invoke("behave", event))
    busy.start()
    try:
        wait_for(started.exists, what="the first invocation to start")
        with pytest.raises(TooManyRequests) as info:
            functions.invoke("broken_import", b"{}")  # another unreserved function
        assert info.value.reason == "ConcurrentInvocationLimitExceeded"
        assert functions.invoke("single", b'{"action": "echo"}').outcome is Outcome.success  # reserved: own pool
    finally:
        release.touch()
        busy.join(10)
        functions.close()


def test_idle_environments_are_shut_down_after_the_keep_alive(tmp_path: Path, functions_dir: Path):
    clock = FakeClock()
    text = MANIFEST.replace("memory: 128\n", "memory: 128\n    keep_alive: 60s\n", 1)
    manifest = load_manifest(write_manifest(tmp_path, text), env={})
    functions = Functions(manifest, LogBook(tmp_path / "logs"), clock=clock)
    try:
        pid = json.loads(functions.invoke("behave", b"{}").payload)["pid"]
        assert functions.reap_idle(clock.monotonic()) == pytest.approx(60)
        clock.advance(59)
        functions.reap_idle(clock.monotonic())
        assert functions.pool("behave").idle == 1 and psutil.pid_exists(pid)
        clock.advance(1)
        functions.reap_idle(clock.monotonic())
        assert functions.pool("behave").idle == 0
        wait_for(lambda: not psutil.pid_exists(pid), what="the idle worker to exit")
        again = json.loads(functions.invoke("behave", b"{}").payload)
        assert again["pid"] != pid and again["calls"] == 1
    finally:
        functions.close()


def _pyenv_pythons() -> dict[tuple[int, ...], str]:
    found = {}
    for p in Path.home().glob(".pyenv/versions/*/bin/python"):
        version = p.parts[-3]
        if p.is_file() and re.fullmatch(r"\d+\.\d+\.\d+", version):
            found[tuple(map(int, version.split(".")))] = str(p)
    return found


PYENV = _pyenv_pythons()
SUPPORTED = sorted(v for v in PYENV if v >= (3, 8) and v[:2] != sys.version_info[:2])
#: The oldest supported interpreter and the newest one, when this machine has them.
OTHER_PYTHONS = [PYENV[v] for v in sorted({SUPPORTED[0], SUPPORTED[-1]})] if SUPPORTED else []
OLD_PYTHONS = [PYENV[v] for v in sorted(v for v in PYENV if v < (3, 8))]


@pytest.mark.skipif(not OTHER_PYTHONS, reason="no other interpreter installed here")
@pytest.mark.parametrize("python", OTHER_PYTHONS)
def test_a_function_can_name_its_own_interpreter(tmp_path: Path, functions_dir: Path, python: str):
    functions = _with_python(tmp_path, python)
    try:
        body = json.loads(functions.invoke("behave", b'{"action": "context"}').payload)
        assert body["environ"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python" + ".".join(python.split("/")[-3].split(".")[:2])
        assert json.loads(functions.invoke("behave", b'{"action": "raise"}').payload)["errorType"] == "ValueError"
    finally:
        functions.close()


def _with_python(tmp_path: Path, python: str) -> Functions:
    text = MANIFEST.replace("    environment: {STAGE: test}\n", f"    environment: {{STAGE: test}}\n    python: {python}\n", 1)
    return Functions(load_manifest(write_manifest(tmp_path, text), env={}), LogBook(tmp_path / "logs"))


def test_an_interpreter_that_fails_to_start_is_a_runtime_exit_error_with_its_reason(tmp_path, functions_dir):
    broken = tmp_path / "python-broken"
    broken.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n")
    broken.chmod(0o755)
    functions = _with_python(tmp_path, str(broken))
    try:
        result = functions.invoke("behave", b"{}")
        assert result.outcome is Outcome.crashed
        assert json.loads(result.payload)["errorMessage"].endswith(
            f"Error: Runtime exited with error: {broken} failed to start the lambdad runtime: "
            "Fatal Python error: init_fs_encoding"
        )
    finally:
        functions.close()


@pytest.mark.skipif(not OLD_PYTHONS, reason="no interpreter older than 3.8 installed here")
def test_an_interpreter_older_than_3_8_is_refused_clearly(tmp_path: Path, functions_dir: Path):
    python = OLD_PYTHONS[-1]
    version = python.split("/")[-3]
    functions = _with_python(tmp_path, python)
    try:
        message = json.loads(functions.invoke("behave", b"{}").payload)["errorMessage"]
        assert message.endswith(f"lambdad runs functions on Python 3.8 or newer, this is {version}")
    finally:
        functions.close()


# -- what an environment starts ends with it ------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    ("then", "outcome"), [("timeout", Outcome.timeout), ("exit", Outcome.crashed), ("return", Outcome.success)]
)
def test_processes_a_handler_starts_end_with_its_environment(runtime: Functions, tmp_path: Path, then, outcome):
    pid_file = tmp_path / "child.pid"
    result, _ = call(runtime, action="spawn_then", pid_file=str(pid_file), then=then)
    assert result.outcome is outcome
    child = int(pid_file.read_text())
    if outcome is Outcome.success:  # a warm environment keeps its background work, as on Lambda ...
        assert not _gone(child)
        runtime.pool("behave").close_idle()  # ... until the environment is shut down
    wait_for(lambda: _gone(child), what=f"the handler's child {child} to be killed")


def test_a_crash_is_a_crash_even_when_a_child_holds_the_socket(runtime: Functions, tmp_path: Path):
    result, body = call(runtime, action="spawn_then", pid_file=str(tmp_path / "c.pid"), then="background_exit")
    assert result.outcome is Outcome.crashed
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert result.duration_ms < 1000  # not a timeout in disguise


def test_a_forced_stop_kills_the_environment_and_its_children(tmp_path: Path, functions_dir: Path):
    functions = Functions(load_manifest(write_manifest(tmp_path, MANIFEST), env={}), LogBook(tmp_path / "logs"))
    pid_file = tmp_path / "child.pid"
    results = []
    event = json.dumps({"action": "spawn_then", "pid_file": str(pid_file), "then": "timeout"}).encode()
    thread = threading.Thread(target=lambda: results.append(functions.invoke("single", event)))
    thread.start()
    wait_for(pid_file.exists, what="the handler to start its child")
    functions.close(force=True)
    thread.join(10)
    assert results[0].outcome is Outcome.crashed
    wait_for(lambda: _gone(int(pid_file.read_text())), what="the child to be killed")


# -- output, sizes, exits ---------------------------------------------------------------------------


def test_output_without_a_final_newline_stays_with_its_invocation(runtime: Functions):
    result, _ = call(runtime, action="no_newline")
    lines = log_lines(runtime)
    assert lines.index("no newline at the end") < lines.index(f"END RequestId: {result.request_id}")


def test_a_very_long_line_is_logged_in_cloudwatch_sized_pieces(runtime: Functions):
    result, _ = call(runtime, action="long_line", bytes=2 * 1024 * 1024 + 5)
    assert result.outcome is Outcome.success
    pieces = [line for line in log_lines(runtime) if line.startswith("z")]
    assert [len(p) for p in pieces] == [256 * 1024] * 8 + [5]


def test_an_error_document_over_6_mb_is_replaced_like_lambda_does(tmp_path: Path, functions_dir: Path):
    text = MANIFEST.replace("memory: 128", "memory: 512", 1)
    functions = Functions(load_manifest(write_manifest(tmp_path, text), env={}), LogBook(tmp_path / "logs"))
    try:
        result = functions.invoke("behave", json.dumps({"action": "huge_error", "bytes": 7 * 1024 * 1024}).encode())
        assert result.outcome is Outcome.error
        assert json.loads(result.payload) == {
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    finally:
        functions.close()


def test_sys_exit_in_a_handler_ends_the_runtime_with_its_message(runtime: Functions):
    result, body = call(runtime, action="sys_exit", code="bye from sys.exit")
    assert result.outcome is Outcome.crashed
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 1")
    assert "bye from sys.exit" in log_lines(runtime)


# -- init past Lambda's 10 s ---------------------------------------------------------------------------


@pytest.fixture
def short_init(monkeypatch: pytest.MonkeyPatch) -> float:
    from lambdad.runtime import exchange

    monkeypatch.setattr(exchange, "INIT_TIMEOUT_S", 0.3)  # stands for Lambda's 10 s
    return 0.3


def test_a_slow_init_runs_on_inside_the_invocation_as_on_lambda(tmp_path, functions_dir, short_init):
    text = MANIFEST.replace("  behave:\n", "  slow:\n    handler: slow_init.handler\n    code: ./functions\n"
                                           "    timeout: 2\n    environment: {INIT_SLEEP: '0.8'}\n  behave:\n", 1)
    functions = Functions(load_manifest(write_manifest(tmp_path, text), env={}), LogBook(tmp_path / "logs"))
    try:
        result = functions.invoke("slow", b"{}")
        assert result.outcome is Outcome.success
        assert result.init_ms >= 800
        # the init's overrun past the init limit (0.5 s here) came out of the 2 s timeout
        assert json.loads(result.payload)["remaining_ms"] <= 1600
    finally:
        functions.close()


def test_an_init_longer_than_both_limits_times_out(tmp_path, functions_dir, short_init):
    text = MANIFEST.replace("  behave:\n", "  slow:\n    handler: slow_init.handler\n    code: ./functions\n"
                                           "    timeout: 1\n    environment: {INIT_SLEEP: '5'}\n  behave:\n", 1)
    functions = Functions(load_manifest(write_manifest(tmp_path, text), env={}), LogBook(tmp_path / "logs"))
    try:
        result = functions.invoke("slow", b"{}")
        assert result.outcome is Outcome.timeout
        assert json.loads(result.payload)["errorMessage"].endswith("Task timed out after 1.00 seconds")
    finally:
        functions.close()
