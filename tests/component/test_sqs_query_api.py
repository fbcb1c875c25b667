"""The API port also answers SQS's query protocol (form in, XML out), as the AWS CLI v2 before 2.13 sends it."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from lambdad.api.sqs_query import XMLNS
from tests.component.asgi import ApiWorld, run
from tests.component.test_api_boundary import make_manifest

NS = {"q": XMLNS}
FORM = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")]
URL = "http://127.0.0.1:9001/111122223333/q"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    w = ApiWorld(tmp_path, make_manifest(tmp_path))
    yield w
    w.close()


def query(world: ApiWorld, headers=(), **form: str) -> tuple[int, ET.Element]:
    reply = run(world.api, "POST", "/", [*FORM, *headers], urlencode({"Version": "2012-11-05", **form}).encode())
    assert dict(reply.headers).get("content-type") == "text/xml", reply.headers
    return reply.status, ET.fromstring(reply.body)


def test_send_and_receive_in_the_query_protocol(world: ApiWorld):
    status, root = query(world, Action="SendMessage", QueueUrl=URL, MessageBody="hello", **{
        "MessageAttribute.1.Name": "Kind", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "greeting"})
    assert status == 200
    assert root.find("q:SendMessageResult/q:MD5OfMessageBody", NS).text == "5d41402abc4b2a76b9719d911017c592"
    status, root = query(world, Action="ReceiveMessage", QueueUrl=URL, **{"AttributeName.1": "All",
                                                                          "MessageAttributeName.1": "All"})
    message = root.find("q:ReceiveMessageResult/q:Message", NS)
    assert message.find("q:Body", NS).text == "hello"
    assert message.find("q:MessageAttribute/q:Value/q:StringValue", NS).text == "greeting"
    counts = {a.find("q:Name", NS).text: a.find("q:Value", NS).text for a in message.findall("q:Attribute", NS)}
    assert counts["ApproximateReceiveCount"] == "1"
    status, root = query(world, Action="DeleteMessage", QueueUrl=URL,
                         ReceiptHandle=message.find("q:ReceiptHandle", NS).text)
    assert status == 200 and root.tag == f"{{{XMLNS}}}DeleteMessageResponse"


def test_errors_are_query_protocol_error_documents(world: ApiWorld):
    status, root = query(world, Action="GetQueueUrl", QueueName="nope")
    assert status == 400 and root.find("q:Error/q:Code", NS).text == "AWS.SimpleQueueService.NonExistentQueue"
    status, root = query(world, Action="Frobnicate")  # no SQS API has it
    assert status == 400 and root.find("q:Error/q:Code", NS).text == "InvalidAction"
    status, root = query(world, Action="DeleteQueue", QueueUrl=URL)  # SQS has it, lambdad does not
    assert status == 400
    assert root.find("q:Error/q:Code", NS).text == "AWS.SimpleQueueService.UnsupportedOperation"
    status, root = query(world)
    assert status == 400 and root.find("q:Error/q:Code", NS).text == "MissingAction"
    reply = run(world.api, "POST", "/", FORM, b"Action=SendMessage&MessageBody=\xff")  # not UTF-8
    assert reply.status == 400 and ET.fromstring(reply.body).find("q:Error/q:Code", NS).text == "MalformedQueryString"
    status, root = query(world, [("origin", "https://evil.example")], Action="ListQueues")  # a web page's form
    assert status == 403 and "web pages" in root.find("q:Error/q:Message", NS).text
    assert world.store.write(lambda tx: tx.execute("SELECT COUNT(*) FROM messages").fetchone()[0]) == 0


def test_an_invoke_sent_as_a_form_is_still_an_invoke(world: ApiWorld):
    """curl --data sends any body as a form: the Invoke path is Lambda's whatever the content type."""
    reply = run(world.api, "POST", "/2015-03-31/functions/f/invocations", FORM, b'{"a": 1}')
    assert reply.status == 200 and b'"a"' in reply.body


def test_a_carriage_return_survives_the_xml(world: ApiWorld):
    """XML parsers turn a raw CR LF into LF: SQS writes CR as `&#xD;`, and so must lambdad, or a
    body would come back changed (and no longer match its MD5)."""
    body = "line one\r\nline two & <three>\r"
    assert query(world, Action="SendMessage", QueueUrl=URL, MessageBody=body)[0] == 200
    _, root = query(world, Action="ReceiveMessage", QueueUrl=URL)
    message = root.find("q:ReceiveMessageResult/q:Message", NS)
    assert message.find("q:Body", NS).text == body
    assert message.find("q:MD5OfBody", NS).text == hashlib.md5(body.encode()).hexdigest()
