"""What SQS accepts in a message: the body's characters and size, message attribute names, types
and values, FIFO group and deduplication ids. Pure checks, run by the queues service
(`Queues.message`) for every sender (the SQS APIs, `lambdad queue send`) before anything is
written: a message in the store is always one a mapping can deliver. Delivery uses
`deliverable_attributes` to leave out what an older store may still hold that these checks would
have refused.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lambdad import tracing
from lambdad.sqs_vocabulary import TRACE_HEADER, QueueError

MAX_MESSAGE_BYTES = 1024 * 1024  #: body and attributes together (SQS's 1 MiB)
MAX_ATTRIBUTES = 10
MAX_NAME = 256  #: an attribute's name, and its data type
MAX_ID = 128  #: MessageGroupId, MessageDeduplicationId

#: The characters SQS allows in a body (and a String attribute): XML 1.0's.
_BAD_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ALLOWED = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"
_NAME = re.compile(r"[A-Za-z0-9_.-]")
_RESERVED = ("aws.", "amazon.")
_TYPES = ("String", "Number", "Binary")
#: A Number attribute: SQS's decimal syntax (the range and precision are checked with Decimal).
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: MessageGroupId and MessageDeduplicationId: alphanumeric and punctuation characters.
_ID = re.compile(r"[\x21-\x7e]{1,128}")


def _invalid(message: str) -> QueueError:
    return QueueError("InvalidParameterValue", message)


def bad_character(text: str) -> str | None:
    """The first character SQS refuses in `text`, as SQS names it (`#x0`), or None."""
    found = _BAD_CHAR.search(text)
    return None if found is None else f"#x{ord(found.group()):X}"


def check_body(body: str) -> bytes:
    """The body's bytes, if SQS takes it."""
    if not body:
        raise QueueError("MissingParameter", "The request must contain the parameter MessageBody.")
    char = bad_character(body)
    if char is not None:
        raise QueueError("InvalidMessageContents", f"Invalid binary character '{char}' was found in the message "
                                                   f"body, the set of allowed characters is {_ALLOWED}.")
    return body.encode()


def check_name(name: object) -> None:
    """A message attribute's name, as SQS words what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise _invalid("The request must contain non-empty message attribute name.")
    if len(name) > MAX_NAME:
        raise _invalid(f"Length of message attribute name must be less than {MAX_NAME} bytes.")
    if name.startswith("."):
        raise _invalid("Invalid message attribute name starting with character '.' was found.")
    if name.endswith("."):
        raise _invalid("Invalid message attribute name ending with character '.' was found.")
    for char in name:
        if not _NAME.fullmatch(char):
            raise _invalid(f"Invalid non-alphanumeric character '#x{ord(char):X}' was found in the message attribute "
                           "name. Can only include alphanumeric characters, hyphens, underscores, or dots.")
    if ".." in name:
        raise _invalid("Message attribute name can not have successive '.' character.")
    if name.lower().startswith(_RESERVED):
        raise _invalid(f"The message attribute name '{name}' is reserved: names starting with 'AWS.' or 'Amazon.' "
                       "(in any case) are for AWS's own use.")


def check_attribute(name: object, attr: object) -> tuple[dict[str, str], int]:
    """One message attribute, as it is stored (`DataType` and one value: a string, or base64 text),
    and the bytes it counts toward the message size."""
    check_name(name)
    if not isinstance(attr, dict):
        raise _invalid(f"The message attribute '{name}' must be an object with a DataType and a value.")
    data_type = attr.get("DataType")
    if data_type is None or data_type == "":
        raise _invalid(f"The message attribute '{name}' must contain non-empty message attribute type.")
    if not isinstance(data_type, str) or len(data_type) > MAX_NAME or bad_character(data_type) is not None \
            or data_type.split(".", 1)[0] not in _TYPES:
        raise _invalid(f"The message attribute '{name}' has an invalid message attribute type, the set of "
                       "supported type prefixes is Binary, Number, and String.")
    binary = data_type.split(".", 1)[0] == "Binary"
    field, other = ("BinaryValue", "StringValue") if binary else ("StringValue", "BinaryValue")
    value = attr.get(field)
    if value is None or value == "":
        if attr.get(other) is not None:
            raise _invalid(f"The message attribute '{name}' with type '{data_type}' must use field "
                           f"'{field.removesuffix('Value')}'.")
        raise _invalid(f"The message attribute '{name}' must contain non-empty message attribute value for "
                       f"message attribute type '{data_type}'.")
    if not isinstance(value, str):
        raise _invalid(f"The message attribute '{name}' has a {field} that is not a string.")
    if binary:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"The message attribute '{name}' has a BinaryValue that is not base64.") from None
        size = len(raw)
    else:
        char = bad_character(value)
        if char is not None:
            raise _invalid(f"Message (user) attribute '{name}' value contains invalid binary character '{char}'.")
        if data_type.startswith("Number") and not _is_number(value):
            raise _invalid(f"Can't cast the value of message (user) attribute '{name}' to a number.")
        size = len(value.encode())
    return {"DataType": data_type, field: value}, len(name.encode()) + len(data_type.encode()) + size


def _is_number(text: str) -> bool:
    """SQS's numbers: up to 38 significant digits, between 10^-128 and 10^+126 in magnitude."""
    if not _NUMBER.fullmatch(text):
        return False
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    if number == 0:
        return True
    digits = number.as_tuple().digits  # (exact: normalize() would round to the context's 28 digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
    magnitude = abs(number)
    return len(digits) <= 38 and Decimal("1e-128") <= magnitude < Decimal("1e126")


def check_attributes(attributes: object) -> tuple[dict[str, dict[str, str]], int]:
    """A message's attributes, as stored, and the bytes they count toward its size."""
    if attributes is None:
        return {}, 0
    if not isinstance(attributes, dict):
        raise _invalid("MessageAttributes must be an object of attribute names to values.")
    if len(attributes) > MAX_ATTRIBUTES:
        raise _invalid(f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
                       f"[{MAX_ATTRIBUTES}].")
    out, size = {}, 0
    for name, attr in attributes.items():
        out[name], n = check_attribute(name, attr)
        size += n
    return out, size


def check_system_attributes(attributes: object) -> str | None:
    """A message's `MessageSystemAttributes`: SQS takes only `AWSTraceHeader`, a String holding an
    X-Ray trace header. Returns the header (None without one). It does not count toward the
    message's size, as on SQS."""
    if attributes is None or attributes == {}:
        return None
    if not isinstance(attributes, dict):
        raise _invalid("MessageSystemAttributes must be an object of attribute names to values.")
    for name in attributes:
        if name != TRACE_HEADER:
            raise _invalid(f"Message system attribute name '{name}' is invalid. The only supported message system "
                           f"attribute is {TRACE_HEADER}.")
    attr = attributes[TRACE_HEADER]
    if not isinstance(attr, dict) or attr.get("DataType") != "String":
        raise _invalid(f"The message system attribute '{TRACE_HEADER}' must have the DataType String.")
    value = attr.get("StringValue")
    if not isinstance(value, str) or tracing.parse(value) is None:
        raise _invalid(f"The message system attribute '{TRACE_HEADER}' must hold an X-Ray trace header "
                       f"(Root=1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx;...); got {value!r}.")
    return value


def check_id(parameter: str, value: str) -> str:
    """A MessageGroupId or MessageDeduplicationId."""
    if not _ID.fullmatch(value):
        raise _invalid(f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include "
                       f"alphanumeric and punctuation characters. 1 to {MAX_ID} in length.")
    return value


@dataclass(frozen=True)
class Outgoing:
    """A message SQS would take, ready for `Queues.send`."""

    body: bytes
    attributes: dict[str, dict[str, str]]
    delay_s: int | None = None
    group: str | None = None
    dedup_id: str | None = None
    size: int = 0  #: what counts toward SQS's size limits: the body and the attributes
    trace_header: str | None = None  #: AWSTraceHeader, from MessageSystemAttributes
    system_sent: bool = False  #: MessageSystemAttributes were given (the answer has their MD5)


def outgoing(body: str, attributes: object = None, delay_s: int | None = None, group: str | None = None,
             dedup_id: str | None = None, fifo: bool = False, system_attributes: object = None) -> Outgoing:
    """Every check of SendMessage on one message, before anything is written (the queue's own rules,
    a FIFO queue's group and deduplication, are `Queues.send`'s)."""
    data = check_body(body)
    checked, size = check_attributes(attributes)
    trace_header = check_system_attributes(system_attributes)
    if len(data) + size > MAX_MESSAGE_BYTES:
        raise _invalid(f"One or more parameters are invalid. Reason: Message must be shorter than "
                       f"{MAX_MESSAGE_BYTES} bytes.")
    if group is not None:
        check_id("MessageGroupId", group)
    if dedup_id is not None:
        if not fifo:
            raise _invalid("The request include parameter that is not valid for this queue type")
        check_id("MessageDeduplicationId", dedup_id)
    return Outgoing(data, checked, delay_s, group, dedup_id, len(data) + size, trace_header, trace_header is not None)


def deliverable_attributes(attributes: object) -> tuple[dict[str, Any], list[str]]:
    """The attributes of a stored message that an event or a receive can carry, and the names of
    those it cannot (not an object, a data type or value that is not a string, a binary value that
    is not base64: only a store written before the checks above holds any). Delivery leaves those
    out rather than fail the whole batch on them; it does not re-judge what lambdad itself sends
    (an empty ErrorMessage of a dead-letter message is delivered as it is)."""
    if not isinstance(attributes, dict):
        return {}, ["(not an object)"] if attributes else []
    good, bad = {}, []
    for name, attr in attributes.items():
        kept = _deliverable(attr) if _encodable(name) else None
        if kept is None:
            bad.append(str(name))
        else:
            good[name] = kept
    return good, bad


def _deliverable(attr: object) -> dict[str, str] | None:
    """The attribute with its one value, or None if no event can carry it."""
    if not isinstance(attr, dict) or not isinstance(attr.get("DataType"), str) or not attr["DataType"] \
            or not _encodable(attr["DataType"]):
        return None
    field = "BinaryValue" if attr["DataType"].split(".", 1)[0] == "Binary" else "StringValue"
    value = attr.get(field)
    if not isinstance(value, str) or not _encodable(value):
        return None
    if field == "BinaryValue":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return {"DataType": attr["DataType"], field: value}


def _encodable(text: object) -> bool:
    """Text an event (UTF-8 JSON) can carry: no lone surrogate, which JSON escapes can hold."""
    return isinstance(text, str) and _SURROGATE.search(text) is None
