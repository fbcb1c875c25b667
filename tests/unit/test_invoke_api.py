"""The Invoke API's pure parts: function names in every form AWS accepts, and errors as botocore reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdad.api.lambda_shapes import error_response, parse_function_name, resolve
from lambdad.errors import FunctionNotFound, RequestTooLarge, TooManyRequests, UsageError
from lambdad.manifest.model import Function, Manifest
from lambdad.runtime.invocation import decode_client_context


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account="111122223333",
                    functions={"f": Function("f", "a.h", tmp_path, "python3")})


@pytest.mark.parametrize(
    ("text", "name", "qualifier"),
    [
        ("f", "f", None),
        ("f:$LATEST", "f", "$LATEST"),
        ("arn:aws:lambda:eu-west-1:111122223333:function:f", "f", None),
        ("arn:aws:lambda:eu-west-1:111122223333:function:f:live", "f", "live"),
        ("111122223333:function:f", "f", None),
        ("111122223333:function:f:7", "f", "7"),
    ],
)
def test_name_forms(manifest, text, name, qualifier):
    target = parse_function_name(text, manifest)
    assert (target.name, target.qualifier) == (name, qualifier)


@pytest.mark.parametrize(
    "text",
    ["arn:aws:lambda:us-east-1:111122223333:function:f", "arn:aws:lambda:eu-west-1:999999999999:function:f",
     "arn:aws:sqs:eu-west-1:111122223333:function:f", "999999999999:function:f", "a:b:c:d:e"],
)
def test_other_regions_accounts_and_services_are_not_found(manifest, text):
    with pytest.raises(FunctionNotFound):
        parse_function_name(text, manifest)


def test_qualifiers(manifest):
    assert resolve("f", "$LATEST", manifest).name == "f"
    with pytest.raises(FunctionNotFound) as e:
        resolve("f", "live", manifest)
    assert e.value.name == "arn:aws:lambda:eu-west-1:111122223333:function:f:live"
    with pytest.raises(UsageError, match="derived qualifier"):
        resolve("f:$LATEST", "7", manifest)


@pytest.mark.parametrize(
    ("error", "status", "code", "body"),
    [
        (FunctionNotFound("arn:x"), 404, "ResourceNotFoundException", {"Type": "User", "Message": "Function not found: arn:x"}),
        (TooManyRequests("ConcurrentInvocationLimitExceeded"), 429, "TooManyRequestsException",
         {"Reason": "ConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded."}),
        (RequestTooLarge("Request must be smaller than 6291456 bytes for the InvokeFunction operation"), 413,
         "RequestEntityTooLargeException",
         {"Type": "User", "Message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}),
    ],
)
def test_errors_carry_the_shape_name_botocore_maps(error, status, code, body):
    got_status, headers, raw = error_response(error)
    assert got_status == status and ("x-amzn-ErrorType", code) in headers and json.loads(raw) == body


@pytest.mark.parametrize("text", ["not base64!", "bm90IGpzb24="])  # the second is base64 of "not json"
def test_bad_client_contexts_are_refused(text):
    with pytest.raises(UsageError, match="Client context must be a valid Base64-encoded JSON object"):
        decode_client_context(text)
