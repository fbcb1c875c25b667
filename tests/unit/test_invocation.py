"""Pure pieces of an invocation: Lambda's log lines, error documents, payload checks, exit reasons."""

import json
import uuid

import pytest

from lambdad.errors import InvalidRequestContent, RequestTooLarge
from lambdad.ids import new_request_id
from lambdad.runtime.functions import check_payload
from lambdad.runtime.invocation import (
    InvokeResult,
    Outcome,
    end_line,
    report_line,
    runtime_error,
    start_line,
)
from lambdad.runtime.launcher import ExitStatus, exit_reason

RID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


def test_start_and_end_lines():
    assert start_line(RID) == f"START RequestId: {RID} Version: $LATEST"
    assert end_line(RID) == f"END RequestId: {RID}"


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            InvokeResult(RID, Outcome.success, b"", duration_ms=3.01, init_ms=110.1, max_memory_mb=36),
            f"REPORT RequestId: {RID}\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 36 MB\tInit Duration: 110.10 ms\t",
        ),
        (
            InvokeResult(RID, Outcome.error, b"", "ValueError", duration_ms=0.2, max_memory_mb=12),
            f"REPORT RequestId: {RID}\tDuration: 0.20 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 12 MB\t",
        ),
        (
            InvokeResult(RID, Outcome.timeout, b"", "Sandbox.Timedout", duration_ms=3000.0, max_memory_mb=73),
            f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 73 MB\tStatus: timeout\t",
        ),
        (
            InvokeResult(RID, Outcome.out_of_memory, b"", "Runtime.OutOfMemory", duration_ms=800.1, max_memory_mb=128),
            f"REPORT RequestId: {RID}\tDuration: 800.10 ms\tBilled Duration: 801 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory\t",
        ),
        (
            InvokeResult(RID, Outcome.crashed, b"", "Runtime.ExitError", duration_ms=1.0, max_memory_mb=11),
            f"REPORT RequestId: {RID}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 11 MB\tStatus: error\tError Type: Runtime.ExitError\t",
        ),
    ],
)
def test_report_line(result, line):
    r = result
    assert report_line(r.request_id, r.outcome, r.error_type, r.duration_ms, r.init_ms, 128, r.max_memory_mb) == line


def test_request_ids_are_version_4_uuids():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for rid in list(ids)[:50]:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_runtime_error_document():
    doc = json.loads(runtime_error("Sandbox.Timedout", RID, "Task timed out after 1.00 seconds"))
    assert doc == {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {RID} Error: Task timed out after 1.00 seconds"}


def test_function_error_and_message():
    ok = InvokeResult(RID, Outcome.success, b'"fine"')
    failed = InvokeResult(RID, Outcome.error, b'{"errorMessage": "boom", "errorType": "ValueError"}', "ValueError")
    assert ok.function_error is None and ok.error_message() == ""
    assert failed.function_error == "Unhandled" and failed.error_message() == "boom"
    assert Outcome.error.keeps_environment and not Outcome.timeout.keeps_environment


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ExitStatus(code=1), "Runtime exited with error: exit status 1"),
        (ExitStatus(code=127), "Runtime exited with error: exit status 127"),
        (ExitStatus(code=0), "Runtime exited without providing a reason"),
        (ExitStatus(signal=9), "Runtime exited with error: signal: killed"),
        (ExitStatus(signal=11), "Runtime exited with error: signal: segmentation fault"),
        (ExitStatus(signal=10), "Runtime exited with error: signal: signal 10"),
        (None, "Runtime exited without providing a reason"),
    ],
)
def test_exit_reason(status, reason):
    assert exit_reason(status) == reason


@pytest.mark.parametrize(("payload", "expected"), [(b"", b"{}"), (b"  ", b"{}"), (b'{"a": 1}', b'{"a": 1}'), (b"3", b"3")])
def test_check_payload_accepts(payload, expected):
    assert check_payload(payload) == expected


def test_check_payload_rejects_bad_json_and_size():
    with pytest.raises(InvalidRequestContent, match="Could not parse request body into json"):
        check_payload(b"{nope")
    with pytest.raises(RequestTooLarge, match="Request must be smaller than 10 bytes"):
        check_payload(b'"' + b"x" * 20 + b'"', limit=10)
