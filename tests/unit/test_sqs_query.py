"""SQS's query protocol (what the AWS CLI v2 before 2.13 sends), translated to and from the JSON protocol."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from lambdad.api.sqs_query import XMLNS, parse_form, xml_answer, xml_error

NS = {"q": XMLNS}


@pytest.mark.parametrize(
    ("form", "action", "doc"),
    [
        pytest.param({"Action": "GetQueueUrl", "Version": "2012-11-05", "QueueName": "jobs"}, "GetQueueUrl",
                     {"QueueName": "jobs"}, id="plain"),
        pytest.param({"Action": "SendMessage", "QueueUrl": "u", "MessageBody": "a&b=c", "DelaySeconds": "5",
                      "MessageAttribute.1.Name": "K", "MessageAttribute.1.Value.DataType": "String",
                      "MessageAttribute.1.Value.StringValue": "v", "MessageAttribute.2.Name": "B",
                      "MessageAttribute.2.Value.DataType": "Binary", "MessageAttribute.2.Value.BinaryValue": "AAE="},
                     "SendMessage",
                     {"QueueUrl": "u", "MessageBody": "a&b=c", "DelaySeconds": 5, "MessageAttributes": {
                         "K": {"DataType": "String", "StringValue": "v"},
                         "B": {"DataType": "Binary", "BinaryValue": "AAE="}}}, id="attributes-map"),
        pytest.param({"Action": "SendMessageBatch", "QueueUrl": "u",
                      "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "two",
                      "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "one",
                      "SendMessageBatchRequestEntry.1.DelaySeconds": "1"},
                     "SendMessageBatch",
                     {"QueueUrl": "u", "Entries": [{"Id": "a", "MessageBody": "one", "DelaySeconds": 1},
                                                   {"Id": "b", "MessageBody": "two"}]}, id="batch-in-order"),
        pytest.param({"Action": "ReceiveMessage", "QueueUrl": "u", "AttributeName.1": "All",
                      "MessageAttributeName.1": "K", "MessageAttributeName.2": "L", "MaxNumberOfMessages": "10",
                      "WaitTimeSeconds": "soon"},
                     "ReceiveMessage",
                     {"QueueUrl": "u", "AttributeNames": ["All"], "MessageAttributeNames": ["K", "L"],
                      "MaxNumberOfMessages": 10, "WaitTimeSeconds": "soon"}, id="lists-and-a-bad-integer"),
        pytest.param({"Action": "CreateQueue", "QueueName": "q", "Attribute.1.Name": "VisibilityTimeout",
                      "Attribute.1.Value": "60"}, "CreateQueue",
                     {"QueueName": "q", "Attributes": {"VisibilityTimeout": "60"}}, id="queue-attributes"),
    ],
)
def test_a_form_becomes_the_json_document(form: dict, action: str, doc: dict):
    assert parse_form(urlencode(form).encode()) == (action, doc)


def _parsed(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)


def test_answers_are_the_query_protocols_xml():
    root = _parsed(xml_answer("ReceiveMessage", {"Messages": [{
        "MessageId": "m1", "Body": "<b>&", "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {"K": {"StringValue": "v", "DataType": "String"}}}]}, "rid"))
    assert root.tag == f"{{{XMLNS}}}ReceiveMessageResponse"
    message = root.find("q:ReceiveMessageResult/q:Message", NS)
    assert message.find("q:Body", NS).text == "<b>&"
    assert message.find("q:Attribute/q:Name", NS).text == "ApproximateReceiveCount"
    assert message.find("q:MessageAttribute/q:Value/q:StringValue", NS).text == "v"
    assert root.find("q:ResponseMetadata/q:RequestId", NS).text == "rid"
    urls = _parsed(xml_answer("ListQueues", {"QueueUrls": ["a", "b"]}, "r"))
    assert [e.text for e in urls.findall("q:ListQueuesResult/q:QueueUrl", NS)] == ["a", "b"]
    batch = _parsed(xml_answer("DeleteMessageBatch", {"Successful": [{"Id": "1"}], "Failed": [
        {"Id": "2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}]}, "r"))
    assert batch.find("q:DeleteMessageBatchResult/q:DeleteMessageBatchResultEntry/q:Id", NS).text == "1"
    assert batch.find("q:DeleteMessageBatchResult/q:BatchResultErrorEntry/q:SenderFault", NS).text == "true"
    empty = _parsed(xml_answer("ReceiveMessage", {}, "r"))  # a client reads the result element even when empty
    assert empty.find("q:ReceiveMessageResult", NS) is not None


def test_errors_carry_the_query_code():
    root = _parsed(xml_error(b'{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone <here>"}',
                             "AWS.SimpleQueueService.NonExistentQueue;Sender", "rid"))
    assert root.find("q:Error/q:Code", NS).text == "AWS.SimpleQueueService.NonExistentQueue"
    assert root.find("q:Error/q:Type", NS).text == "Sender"
    assert root.find("q:Error/q:Message", NS).text == "gone <here>"
    fallback = _parsed(xml_error(b"not json", None, "rid"))
    assert fallback.find("q:Error/q:Code", NS).text == "InternalFailure"
