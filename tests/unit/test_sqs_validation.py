"""SQS's message rules and the typed parameter readers: pure, table-driven."""

from __future__ import annotations

import pytest

from lambdad.api.params import Params
from lambdad.api.sqs_json import SQS_ERRORS
from lambdad.payloads.sqs_messages import bad_character, deliverable_attributes, outgoing
from lambdad.sqs_vocabulary import QueueError


@pytest.mark.parametrize(
    ("text", "found"),
    [("plain", None), ("tab\t nl\n cr\r", None), ("\U0010ffff\ue000\ud7ff", None), ("\x00", "#x0"), ("a\x1fb", "#x1F"),
     ("\ufffe", "#xFFFE"), ("\uffff", "#xFFFF"), ("\ud800", "#xD800"), ("\x7f", None)],
)
def test_body_characters(text, found):
    assert bad_character(text) == found


@pytest.mark.parametrize(
    ("value", "ok"),
    [("0", True), ("-0.0", True), ("+1", True), (".5", True), ("5.", True), ("1e125", True), ("1e126", False),
     ("1e-128", True), ("1e-129", False), ("9" * 38, True), ("9" * 39, False), ("1" + "0" * 40, True),
     ("1.5e", False), ("0x10", False), ("1,5", False), ("", False), (" 1", False), ("Infinity", False),
     ("NaN", False)],
)
def test_number_attributes(value, ok):
    attributes = {"n": {"DataType": "Number", "StringValue": value}}
    if ok:
        assert outgoing("b", attributes).attributes == attributes
    else:
        with pytest.raises(QueueError):
            outgoing("b", attributes)


def test_the_size_counts_names_types_and_values():
    message = outgoing("body", {"ab": {"DataType": "String", "StringValue": "xyz"},
                                "c": {"DataType": "Binary", "BinaryValue": "AAEC"}})
    assert message.size == 4 + (2 + 6 + 3) + (1 + 6 + 3)


def test_only_what_sqs_needs_is_stored():
    value = {"DataType": "String", "StringValue": "v", "StringListValues": [], "BinaryListValues": []}
    assert outgoing("b", {"a": value}).attributes == {"a": {"DataType": "String", "StringValue": "v"}}


@pytest.mark.parametrize(
    ("attributes", "kept", "left_out"),
    [
        ({}, {}, []),
        (None, {}, []),
        ([1], {}, ["(not an object)"]),
        ({"s": {"DataType": "String", "StringValue": ""}}, {"s": {"DataType": "String", "StringValue": ""}}, []),
        ({"b": {"DataType": "Binary", "BinaryValue": "%%"}}, {}, ["b"]),
        ({"b": {"DataType": "Binary.x", "BinaryValue": "AA==", "StringValue": "junk"}},
         {"b": {"DataType": "Binary.x", "BinaryValue": "AA=="}}, []),
        ({"t": {"DataType": None, "StringValue": "x"}}, {}, ["t"]),
        ({"v": {"DataType": "String", "StringValue": 5}}, {}, ["v"]),
        ({"\udc80": {"DataType": "String", "StringValue": "x"}}, {}, ["\udc80"]),
        ({"x": "text"}, {}, ["x"]),
    ],
)
def test_deliverable_attributes(attributes, kept, left_out):
    assert deliverable_attributes(attributes) == (kept, left_out)


@pytest.mark.parametrize(
    ("doc", "read", "code"),
    [
        ({"N": True}, lambda p: p.integer("N", 0, 5), "InvalidParameterValue"),
        ({"N": 2.0}, lambda p: p.integer("N", 0, 5), "InvalidParameterValue"),
        ({"N": "2"}, lambda p: p.integer("N", 0, 5), "InvalidParameterValue"),
        ({"N": 6}, lambda p: p.integer("N", 0, 5), "InvalidParameterValue"),
        ({}, lambda p: p.integer("N", 0, 5, required=True), "MissingParameter"),
        ({"S": 1}, lambda p: p.text("S"), "InvalidParameterValue"),
        ({"S": "\ud800"}, lambda p: p.text("S"), "InvalidParameterValue"),
        ({"L": "a"}, lambda p: p.strings("L"), "InvalidParameterValue"),
        ({"L": ["a", None]}, lambda p: p.strings("L"), "InvalidParameterValue"),
        ({"O": [{}, 1]}, lambda p: p.objects("O"), "InvalidParameterValue"),
        ({"M": []}, lambda p: p.mapping("M"), "InvalidParameterValue"),
    ],
)
def test_typed_readers_refuse_with_the_protocols_error(doc, read, code):
    with pytest.raises(QueueError) as refused:
        read(Params(doc, SQS_ERRORS))
    assert refused.value.code == code


def test_typed_readers_read_null_as_absent():
    p = Params({"N": None, "S": None, "L": None}, SQS_ERRORS)
    assert (p.integer("N", 0, 5, default=3), p.text("S", default="d"), p.strings("L"), p.mapping("M")) == (3, "d", [],
                                                                                                          {})
