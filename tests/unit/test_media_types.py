"""binaryMediaTypes matching, as a REST API matches Content-Type and the first Accept type."""

from __future__ import annotations

import pytest

from lambdad.payloads.media_types import first_accepted, is_binary, media_type, pattern_problem


@pytest.mark.parametrize(("patterns", "value", "binary"), [
    ((), "image/png", False),  # AWS's default: nothing is binary
    (("image/png",), "image/png", True),
    (("image/png",), "Image/PNG", True),  # media types ignore case
    (("IMAGE/PNG",), "image/png", True),
    (("image/png",), "image/png; charset=binary", True),  # parameters are not part of the type
    (("image/png",), "image/jpeg", False),
    (("image/*",), "image/jpeg", True),
    (("image/*",), "text/plain", False),
    (("*/*",), "text/plain", True),
    (("*/*",), "application/json", True),
    (("application/vnd.*",), "application/vnd.ms-excel", True),
    (("application/octet-stream", "image/*"), "application/octet-stream", True),
    (("*/*",), "", False),  # no type: nothing to match
    (("*/*",), None, False),
    (("image/png",), "*/*", False),  # an Accept of */* is not image/png
    (("*/*",), "*/*", True),
])
def test_is_binary(patterns, value, binary):
    assert is_binary(patterns, value) is binary


@pytest.mark.parametrize(("accept", "first"), [
    ("image/webp,image/*,*/*;q=0.8", "image/webp"),  # a browser's <img>: only image/webp counts
    ("application/json, image/png", "application/json"),
    ("IMAGE/PNG;q=0.9", "image/png"),
    ("", ""),
    (None, ""),
])
def test_only_the_first_accept_type_counts(accept, first):
    assert first_accepted(accept) == first


def test_media_type_drops_parameters():
    assert media_type(" Multipart/Form-Data; boundary=x ") == "multipart/form-data"


@pytest.mark.parametrize(("pattern", "ok"), [
    ("image/png", True), ("image/*", True), ("*/*", True), ("application/vnd.api+json", True),
    ("image", False), ("image/png/x", False), ("image /png", False), ("", False), ("image/png; q=1", False),
    (5, False),
])
def test_pattern_problem(pattern, ok):
    assert (pattern_problem(pattern) is None) is ok
