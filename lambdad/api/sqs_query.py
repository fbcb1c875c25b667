"""SQS's older query protocol (form-encoded `Action=SendMessage&...` in, XML out), which AWS CLI v2
releases before 2.13 and older SDKs still send. Each request is turned into the JSON document of the
JSON protocol and handed to the same `SqsApi` operations; the JSON answer is turned into the XML
the query protocol reads. Only the translation lives here: what an operation does is `sqs_json`'s.

Query parameters name list items and map entries by position (`SendMessageBatchRequestEntry.2.Id`,
`MessageAttribute.1.Value.StringValue`), with the item's own name in place of the list's; the XML
answer repeats an element per item (`<QueueUrl>` once per queue). The names below are SQS's
(its 2012-11-05 service model).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
#: A form has at most this many fields (a batch of ten messages with ten attributes each has ~500).
MAX_FIELDS = 2000

#: Query parameter (item) name -> JSON member, for lists.
_LISTS = {
    "SendMessageBatchRequestEntry": "Entries",
    "DeleteMessageBatchRequestEntry": "Entries",
    "ChangeMessageVisibilityBatchRequestEntry": "Entries",
    "AttributeName": "AttributeNames",
    "MessageAttributeName": "MessageAttributeNames",
    "MessageSystemAttributeName": "MessageSystemAttributeNames",
    "TagKey": "TagKeys",
    "StringListValue": "StringListValues",
    "BinaryListValue": "BinaryListValues",
}
#: Query parameter (entry) name -> (JSON member, key field, value field), for maps.
_MAPS = {
    "Attribute": ("Attributes", "Name", "Value"),
    "MessageAttribute": ("MessageAttributes", "Name", "Value"),
    "MessageSystemAttribute": ("MessageSystemAttributes", "Name", "Value"),
    "Tag": ("Tags", "Key", "Value"),
}
#: Members that are integers in the JSON protocol (the query protocol sends every value as text).
_INTEGERS = frozenset({"DelaySeconds", "MaxNumberOfMessages", "WaitTimeSeconds", "VisibilityTimeout", "MaxResults"})

#: JSON member -> the XML element repeated for each item (lists and maps are flattened in SQS's XML).
_XML_ITEMS = {
    "QueueUrls": "QueueUrl",
    "Messages": "Message",
    "Failed": "BatchResultErrorEntry",
}
#: JSON member -> (XML element, key element, value element), for maps.
_XML_MAPS = {
    "Attributes": ("Attribute", "Name", "Value"),
    "MessageAttributes": ("MessageAttribute", "Name", "Value"),
    "Tags": ("Tag", "Key", "Value"),
}


class QueryError(ValueError):
    """The form cannot be read as a query request at all."""


def parse_form(body: bytes) -> tuple[str, dict[str, Any]]:
    """The action and the JSON-protocol document of a query-protocol request body."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as e:
        raise QueryError(f"the request body is not a form: {e}") from None
    fields = dict(pairs)
    action = fields.pop("Action", "")
    fields.pop("Version", None)
    tree: dict[str, Any] = {}
    for key, value in fields.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):  # (a value and a structure under one name: the structure)
            node[parts[-1]] = value
    return action, _document(tree)


def _items(node: dict[str, Any]) -> list[Any]:
    """The values of a `{"1": ..., "2": ...}` node, in their order (positions that are not numbers dropped)."""
    numbered = sorted((int(k), v) for k, v in node.items() if k.isdigit())
    return [v for _, v in numbered]


def _document(tree: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in tree.items():
        if key in _LISTS and isinstance(value, dict):
            doc[_LISTS[key]] = [_document(v) if isinstance(v, dict) else v for v in _items(value)]
        elif key in _MAPS and isinstance(value, dict):
            member, key_field, value_field = _MAPS[key]
            entries = {}
            for entry in _items(value):
                if isinstance(entry, dict) and isinstance(entry.get(key_field), str):
                    raw = entry.get(value_field)
                    entries[entry[key_field]] = _document(raw) if isinstance(raw, dict) else raw
            doc[member] = entries
        elif isinstance(value, dict):
            doc[key] = _document(value)
        elif key in _INTEGERS and value.lstrip("-").isdigit() and len(value) <= 20:
            doc[key] = int(value)
        else:
            doc[key] = value
    return doc


def _text(value: str) -> str:
    """XML character data. A carriage return is written as a reference, as SQS writes it: a raw one
    would reach the client as a line feed (XML parsers normalise line ends), changing the body."""
    return escape(value, {"\r": "&#xD;"})


def _xml(name: str, value: Any, action: str) -> str:
    if isinstance(value, dict):
        return f"<{name}>{_members(value, action)}</{name}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{_text(str(value))}</{name}>"


def _members(doc: dict[str, Any], action: str) -> str:
    out = []
    for key, value in doc.items():
        if value is None:
            continue
        if key in _XML_MAPS and isinstance(value, dict):
            element, key_name, value_name = _XML_MAPS[key]
            out += [f"<{element}>{_xml(key_name, k, action)}{_xml(value_name, v, action)}</{element}>"
                    for k, v in value.items()]
        elif isinstance(value, list):
            element = _XML_ITEMS.get(key) or (f"{action}ResultEntry" if key == "Successful" else key)
            out += [_xml(element, item, action) for item in value]
        else:
            out.append(_xml(key, value, action))
    return "".join(out)


def xml_answer(action: str, doc: dict[str, Any], request_id: str) -> bytes:
    """A JSON-protocol answer as the query protocol's `<ActionResponse>`."""
    # (always there, empty or not: a client reads the result element of every operation with an output)
    result = f"<{action}Result>{_members(doc, action)}</{action}Result>"
    return (f'<?xml version="1.0"?><{action}Response xmlns="{XMLNS}">{result}<ResponseMetadata><RequestId>'
            f"{_text(request_id)}</RequestId></ResponseMetadata></{action}Response>").encode()


def xml_error(json_body: bytes, query_error: str | None, request_id: str) -> bytes:
    """A JSON-protocol error (its `x-amzn-query-error: CODE;Sender` header names the query code)."""
    try:
        doc = json.loads(json_body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    message = doc.get("message") or doc.get("Message") or ""
    code, _, fault = (query_error or "").partition(";")
    if not code:
        code = str(doc.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
    return error_document(code, str(message), request_id, fault or "Sender")


def error_document(code: str, message: str, request_id: str, fault: str = "Sender") -> bytes:
    """The query protocol's `<ErrorResponse>`."""
    return (f'<?xml version="1.0"?><ErrorResponse xmlns="{XMLNS}"><Error><Type>{_text(fault)}</Type>'
            f"<Code>{_text(code)}</Code><Message>{_text(message)}</Message><Detail/></Error>"
            f"<RequestId>{_text(request_id)}</RequestId></ErrorResponse>").encode()


def xml_response(action: str | None, status: int, headers: list[tuple[str, str]], body: bytes,
                 request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A JSON-protocol answer (success or error) as the query protocol answers it."""
    if status == 200 and action:
        xml = xml_answer(action, json.loads(body) if body else {}, request_id)
    else:
        xml = xml_error(body, dict((k.lower(), v) for k, v in headers).get("x-amzn-query-error"), request_id)
    return status, [("content-type", "text/xml"), ("x-amzn-RequestId", request_id)], xml


def unknown_action(action: str) -> str | None:
    """The query error for an `Action` that no SQS API has (lambdad answers the SQS operations it
    lacks with `UnsupportedOperation`, as for the JSON protocol)."""
    return None if action in SQS_ACTIONS else "InvalidAction"


#: Every operation of the SQS API (2012-11-05).
SQS_ACTIONS = frozenset({
    "AddPermission", "CancelMessageMoveTask", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch",
    "CreateQueue", "DeleteMessage", "DeleteMessageBatch", "DeleteQueue", "GetQueueAttributes", "GetQueueUrl",
    "ListDeadLetterSourceQueues", "ListMessageMoveTasks", "ListQueueTags", "ListQueues", "PurgeQueue",
    "ReceiveMessage", "RemovePermission", "SendMessage", "SendMessageBatch", "SetQueueAttributes",
    "StartMessageMoveTask", "TagQueue", "UntagQueue",
})
