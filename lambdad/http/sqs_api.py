"""The SQS API on the daemon's API port, in the JSON protocol boto3 and the aws CLI speak today
(`POST /`, `X-Amz-Target: AmazonSQS.<Operation>`), over the local queues of the manifest.

Errors go out as SQS sends them: a `__type` naming the modeled error and the `x-amzn-query-error`
header with the older query-protocol code, so botocore raises the same exception classes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from lambdad.events.sqs import md5_of_attributes, queue_arn
from lambdad.manifest.model import Manifest, Queue
from lambdad.store import Store, queues
from lambdad.store.queues import QueueError

if TYPE_CHECKING:
    import asyncio

#: ReceiveMessage long polling waits at most this long (SQS: WaitTimeSeconds 0..20).
MAX_WAIT_S = 20
#: Messages sent by another process (the CLI) are noticed by a long poll this fast.
RECHECK_S = 0.25
MAX_BODY = 1024 * 1024  #: SQS's largest message (1 MiB)
MAX_BATCH = 10

#: Error code -> (modeled error shape, query-protocol code, HTTP status).
ERRORS = {
    "QueueDoesNotExist": ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400),
    "MessageNotInflight": ("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400),
    "EmptyBatchRequest": ("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "TooManyEntriesInBatchRequest": ("TooManyEntriesInBatchRequest",
                                     "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "BatchEntryIdsNotDistinct": ("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "MissingParameter": ("MissingParameter", "MissingParameter", 400),
    "InvalidParameterValue": ("InvalidParameterValue", "InvalidParameterValue", 400),
    "UnsupportedOperation": ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400),
    "QueueNameExists": ("QueueNameExists", "QueueAlreadyExists", 400),
}


class SqsApiError(QueueError):
    pass


def error_response(error: QueueError) -> tuple[int, list[tuple[str, str]], bytes]:
    shape, query_code, status = ERRORS.get(error.code, (error.code, error.code, 400))
    body = {"__type": f"com.amazonaws.sqs#{shape}", "message": str(error)}
    headers = [("content-type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{query_code};Sender")]
    return status, headers, json.dumps(body).encode()


def queue_url(host: str, account: str, name: str) -> str:
    return f"http://{host}/{account}/{name}"


def _wanted(names: list[str] | None, available: dict[str, Any]) -> dict[str, Any]:
    """The attributes a ReceiveMessage asked for: `All`, `.*`, prefixes ending in `.*`, or names."""
    if not names:
        return {}
    if "All" in names or ".*" in names:
        return dict(available)
    out = {}
    for key, value in available.items():
        if key in names or any(n.endswith(".*") and key.startswith(n[:-2]) for n in names):
            out[key] = value
    return out


class SqsApi:
    """Operations of the SQS JSON protocol; the Lambda API app hands it every `AmazonSQS.*` request."""

    def __init__(self, manifest: Manifest, store: Store, executor: Executor,
                 on_sent: Callable[[], None] = lambda: None) -> None:
        self.manifest = manifest
        self.store = store
        self._executor = executor
        self._on_sent = on_sent
        self._arrivals: dict[str, asyncio.Event] = {}

    async def handle(self, operation: str, body: bytes, host: str) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            return error_response(SqsApiError("InvalidParameterValue", "The request body is not a JSON object."))
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            return error_response(SqsApiError("UnsupportedOperation", f"lambdad does not implement {operation}"))
        try:
            result = await handler(request, host)
        except QueueError as e:
            return error_response(e)
        return 200, [("content-type", "application/x-amz-json-1.0")], json.dumps(result).encode()

    # -- helpers --------------------------------------------------------------------------------------

    def _queue(self, request: dict) -> Queue:
        url = request.get("QueueUrl")
        if not url:
            raise SqsApiError("MissingParameter", "The request must contain the parameter QueueUrl.")
        name = str(url).rstrip("/").rsplit("/", 1)[-1]
        queue = self.manifest.queues.get(name)
        if queue is None:
            raise SqsApiError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    async def _write(self, op: Callable[[Any], Any]) -> Any:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._executor, self.store.write, op)

    def _arrival(self, queue: str) -> asyncio.Event:
        import asyncio

        event = self._arrivals.get(queue)
        if event is None:
            event = self._arrivals[queue] = asyncio.Event()
        return event

    def _sent(self, queue: str) -> None:
        event = self._arrivals.pop(queue, None)
        if event is not None:
            event.set()
        self._on_sent()

    # -- operations -----------------------------------------------------------------------------------

    async def _op_GetQueueUrl(self, request: dict, host: str) -> dict:
        name = request.get("QueueName")
        if name not in self.manifest.queues:
            raise SqsApiError("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": queue_url(host, self.manifest.account, name)}

    async def _op_CreateQueue(self, request: dict, host: str) -> dict:
        """Queues come from the manifest: creating one of them gives its URL, as SQS does for a queue
        that exists with the same attributes (code that creates its queues at start-up runs as is)."""
        name = request.get("QueueName")
        queue = self.manifest.queues.get(name) if isinstance(name, str) else None
        if queue is None:
            raise SqsApiError("UnsupportedOperation", f"lambdad's queues come from the manifest: add {name!r} under "
                                                      "`queues:` and save (it applies without a restart)")
        have = self._settings(queue)
        for key, value in (request.get("Attributes") or {}).items():
            if key in have and str(value) != have[key]:
                raise SqsApiError("QueueNameExists", f"A queue already exists with the same name and a different "
                                                     f"value for attribute {key} ({have[key]} in the manifest)")
        return {"QueueUrl": queue_url(host, self.manifest.account, queue.name)}

    async def _op_ListQueues(self, request: dict, host: str) -> dict:
        prefix = request.get("QueueNamePrefix", "")
        names = [n for n in self.manifest.queues if n.startswith(prefix)]
        return {"QueueUrls": [queue_url(host, self.manifest.account, n) for n in names]} if names else {}

    async def _op_SendMessage(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        entry = self._entry(request, queue)
        sent = await self._write(lambda tx: queues.send(tx, queue, entry["body"], time.time(), entry["attributes"],
                                                        entry["delay"], entry["group"], entry["dedup"]))
        self._sent(queue.name)
        return self._sent_doc(sent, entry)

    async def _op_SendMessageBatch(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        entries = self._batch(request)

        def send_all(tx) -> tuple[list, list]:  # one transaction for the batch
            ok, failed = [], []
            now = time.time()
            for raw in entries:
                try:
                    entry = self._entry(raw, queue)
                    sent = queues.send(tx, queue, entry["body"], now, entry["attributes"], entry["delay"],
                                       entry["group"], entry["dedup"])
                except QueueError as e:
                    failed.append({"Id": raw["Id"], "SenderFault": True, "Code": e.code, "Message": str(e)})
                    continue
                ok.append({"Id": raw["Id"], **self._sent_doc(sent, entry)})
            return ok, failed

        ok, failed = await self._write(send_all)
        if ok:
            self._sent(queue.name)
        return {"Successful": ok, "Failed": failed}

    @staticmethod
    def _entry(raw: dict, queue: Queue) -> dict:
        """A message to send, checked before anything is written."""
        body = raw.get("MessageBody")
        if body is None:
            raise SqsApiError("MissingParameter", "The request must contain the parameter MessageBody.")
        data = str(body).encode()
        if len(data) > MAX_BODY:
            raise SqsApiError("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be "
                              "shorter than 1048576 bytes.")
        attributes = raw.get("MessageAttributes") or {}
        for name, attr in attributes.items():
            if not isinstance(attr, dict) or not attr.get("DataType") or not (
                    "StringValue" in attr or "BinaryValue" in attr):
                raise SqsApiError("InvalidParameterValue", f"The message attribute '{name}' must contain a "
                                  "non-empty message attribute value and type.")
        if raw.get("MessageDeduplicationId") is not None and not queue.fifo:
            raise SqsApiError("InvalidParameterValue", "The request include parameter that is not valid for this "
                              "queue type")
        return {"body": data, "attributes": attributes, "delay": raw.get("DelaySeconds"),
                "group": raw.get("MessageGroupId"), "dedup": raw.get("MessageDeduplicationId")}

    @staticmethod
    def _sent_doc(sent: queues.Sent, entry: dict) -> dict:
        import hashlib

        doc: dict[str, Any] = {"MD5OfMessageBody": hashlib.md5(entry["body"]).hexdigest(), "MessageId": sent.message_id}
        md5 = md5_of_attributes(entry["attributes"])
        if md5:
            doc["MD5OfMessageAttributes"] = md5
        if sent.sequence is not None:
            doc["SequenceNumber"] = f"{sent.sequence:020d}"
        return doc

    @staticmethod
    def _batch(request: dict) -> list[dict]:
        entries = request.get("Entries") or []
        if any(not isinstance(e, dict) or not e.get("Id") for e in entries):
            raise SqsApiError("MissingParameter", "The request must contain the parameter Entries.N.Id.")
        if not entries:
            raise SqsApiError("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the "
                              "request.")
        if len(entries) > MAX_BATCH:
            raise SqsApiError("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are "
                              f"{MAX_BATCH}. You have sent {len(entries)}.")
        ids = [e.get("Id") for e in entries]
        if len(set(ids)) != len(ids):
            raise SqsApiError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same "
                              "Id.")
        return entries

    async def _op_ReceiveMessage(self, request: dict, host: str) -> dict:
        import asyncio

        queue = self._queue(request)
        limit = int(request.get("MaxNumberOfMessages", 1))
        wait = int(request.get("WaitTimeSeconds", 0))
        if not 1 <= limit <= queues.MAX_RECEIVE:
            raise SqsApiError("InvalidParameterValue", f"Value {limit} for parameter MaxNumberOfMessages is invalid. "
                              "Reason: Must be between 1 and 10, if provided.")
        if not 0 <= wait <= MAX_WAIT_S:
            raise SqsApiError("InvalidParameterValue", f"Value {wait} for parameter WaitTimeSeconds is invalid. "
                              "Reason: Must be >= 0 and <= 20, if provided.")
        visibility = request.get("VisibilityTimeout")
        if visibility is not None and not 0 <= int(visibility) <= queues.MAX_VISIBILITY_S:
            raise SqsApiError("InvalidParameterValue", f"Value {visibility} for parameter VisibilityTimeout is "
                              "invalid. Reason: Must be >= 0 and <= 43200, if provided.")
        dlq = self.manifest.queues.get(queue.redrive_dead_letter_queue or "")
        deadline = time.monotonic() + wait
        while True:
            arrival = self._arrival(queue.name)
            got = await self._write(lambda tx: queues.receive(tx, queue, time.time(), limit, visibility, dlq))
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrival.wait(), min(remaining, RECHECK_S))
        system = list(request.get("AttributeNames") or []) + list(request.get("MessageSystemAttributeNames") or [])
        names = request.get("MessageAttributeNames")
        return {"Messages": [self._message_doc(m, system, names) for m in got]} if got else {}

    @staticmethod
    def _message_doc(m: queues.Message, system: list[str], names: list[str] | None) -> dict:
        try:
            body = m.body.decode()
        except UnicodeDecodeError:
            body = base64.b64encode(m.body).decode()
        doc: dict[str, Any] = {"MessageId": m.message_id, "ReceiptHandle": m.receipt, "MD5OfBody": m.md5_of_body,
                               "Body": body}
        attributes = _wanted(system, m.system_attributes())
        if attributes:
            doc["Attributes"] = attributes
        message_attributes = _wanted(names, m.attributes)
        if message_attributes:
            doc["MessageAttributes"] = message_attributes
            doc["MD5OfMessageAttributes"] = md5_of_attributes(message_attributes)
        return doc

    async def _op_DeleteMessage(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        receipt = self._receipt(request)
        await self._write(lambda tx: queues.delete(tx, queue.name, receipt))
        return {}

    async def _op_DeleteMessageBatch(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        entries = self._batch(request)

        def delete_all(tx) -> dict:  # one transaction; a bad entry fails alone
            ok, failed = [], []
            for entry in entries:
                receipt = entry.get("ReceiptHandle")
                if not receipt:
                    failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                                   "Message": "The input receipt handle is invalid."})
                    continue
                queues.delete(tx, queue.name, str(receipt))
                ok.append({"Id": entry["Id"]})
            return {"Successful": ok, "Failed": failed}

        return await self._write(delete_all)

    @staticmethod
    def _receipt(request: dict) -> str:
        receipt = request.get("ReceiptHandle")
        if not receipt:
            raise SqsApiError("ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
        return str(receipt)

    async def _op_ChangeMessageVisibility(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        receipt = self._receipt(request)
        timeout = float(request.get("VisibilityTimeout", 0))
        await self._write(lambda tx: queues.change_visibility(tx, queue.name, receipt, timeout, time.time()))
        return {}

    async def _op_PurgeQueue(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        await self._write(lambda tx: queues.purge(tx, queue.name))
        return {}

    async def _op_GetQueueAttributes(self, request: dict, host: str) -> dict:
        queue = self._queue(request)
        depth = await self._write(lambda tx: queues.depths(tx, time.time()).get(queue.name, queues.QueueDepth()))
        attributes = {
            "ApproximateNumberOfMessages": str(depth.visible),
            "ApproximateNumberOfMessagesNotVisible": str(depth.in_flight),
            "ApproximateNumberOfMessagesDelayed": str(depth.delayed),
            **self._settings(queue),
        }
        return {"Attributes": _wanted(request.get("AttributeNames"), attributes)}

    def _settings(self, queue: Queue) -> dict[str, str]:
        """The queue's configuration, as SQS attributes."""
        m = self.manifest
        attributes = {
            "QueueArn": queue_arn(m.region, m.account, queue.name),
            "VisibilityTimeout": f"{queue.visibility_timeout_s:g}",
            "MessageRetentionPeriod": f"{queue.message_retention_s:g}",
            "DelaySeconds": f"{queue.delay_s:g}",
            "MaximumMessageSize": str(MAX_BODY),
            "ReceiveMessageWaitTimeSeconds": "0",
        }
        if queue.fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = str(queue.content_based_deduplication).lower()
        if queue.redrive_dead_letter_queue:
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": queue_arn(m.region, m.account, queue.redrive_dead_letter_queue),
                "maxReceiveCount": queue.redrive_max_receive_count})
        return attributes
