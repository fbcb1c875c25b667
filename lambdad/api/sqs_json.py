"""The SQS API on the daemon's API port, in the JSON protocol boto3 and the aws CLI speak today
(`POST /`, `X-Amz-Target: AmazonSQS.<Operation>`), over the local queues of the manifest.

Errors go out as SQS sends them (`sqs_errors`). What an operation does to a queue is the `Queues`
service's: this class reads the request, calls it, and writes the answer.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import dataclasses
import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from lambdad import tracing
from lambdad.api.params import Params, answer_json
from lambdad.api.sqs_errors import SQS_ERRORS, SqsApiError, error_response, invalid_receipt
from lambdad.manifest.model import Manifest, Queue
from lambdad.payloads.sqs import md5_of_attributes, md5_of_system_attributes
from lambdad.payloads.sqs_messages import Outgoing, deliverable_attributes
from lambdad.services.queues import Queues
from lambdad.sqs_vocabulary import MAX_DELAY_S, MAX_RECEIVE, MAX_VISIBILITY_S, Message, QueueError, Sent, is_receipt

if TYPE_CHECKING:
    import asyncio


#: ReceiveMessage long polling waits at most this long (SQS: WaitTimeSeconds 0..20).
MAX_WAIT_S = 20
#: Messages sent by another process (the CLI) are noticed by a long poll this fast.
RECHECK_S = 0.25
MAX_BODY = 1024 * 1024  #: SQS's largest message (1 MiB), and batch
MAX_BATCH = 10

#: The request's X-Amzn-Trace-Id header, for the messages it sends (set per request task by `handle`).
_REQUEST_TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("sqs_request_trace", default=None)
#: A batch entry's Id (SQS: InvalidBatchEntryId otherwise).
_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


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

    def __init__(self, queues: Queues, executor: Executor) -> None:
        self.queues = queues  #: sends wake the pollers through it
        self._executor = executor
        self._arrivals: dict[str, asyncio.Event] = {}

    @property
    def manifest(self) -> Manifest:
        return self.queues.manifest

    async def handle(self, operation: str, body: bytes, host: str,
                     trace: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request; `trace` is its `X-Amzn-Trace-Id` header (what a handler's SDK sends)."""
        _REQUEST_TRACE.set(trace if tracing.parse(trace) is not None else None)
        op = getattr(self, f"_op_{operation}", None)
        handler = None if op is None else (lambda params: op(params, host))
        return await answer_json("SQS", operation, body, handler, SQS_ERRORS,
                                 ("InvalidParameterValue", "UnsupportedOperation"), "application/x-amz-json-1.0",
                                 error_response)

    # -- helpers --------------------------------------------------------------------------------------

    def _queue(self, params: Params) -> Queue:
        url = params.text("QueueUrl")
        if not url:
            raise SqsApiError("MissingParameter", "The request must contain the parameter QueueUrl.")
        return self.queues.queue(url.rstrip("/").rsplit("/", 1)[-1])

    async def _call(self, op: Callable[..., Any], *args: Any) -> Any:
        """A service call, on the executor's threads (it waits for the store)."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._executor, op, *args)

    def _arrival(self, queue: str) -> asyncio.Event:
        import asyncio

        event = self._arrivals.get(queue)
        if event is None:
            event = self._arrivals[queue] = asyncio.Event()
        return event

    def _sent(self, queue: str) -> None:
        """Wake this API's long polls of the queue (the service woke the pollers)."""
        event = self._arrivals.pop(queue, None)
        if event is not None:
            event.set()

    # -- operations -----------------------------------------------------------------------------------

    async def _op_GetQueueUrl(self, params: Params, host: str) -> dict:
        name = params.required_text("QueueName")
        if name not in self.manifest.queues:
            raise SqsApiError("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": queue_url(host, self.manifest.account, name)}

    async def _op_CreateQueue(self, params: Params, host: str) -> dict:
        """Queues come from the manifest: creating one of them gives its URL, as SQS does for a queue
        that exists with the same attributes (code that creates its queues at start-up runs as is)."""
        name = params.required_text("QueueName")
        attributes = params.mapping("Attributes")
        queue = self.manifest.queues.get(name)
        if queue is None:
            raise SqsApiError("UnsupportedOperation", f"lambdad's queues come from the manifest: add {name!r} under "
                                                      "`queues:` and save (it applies without a restart)")
        have = self._settings(queue)
        for key, value in attributes.items():
            if not isinstance(value, str):
                raise SQS_ERRORS.wrong_type(f"Attributes.{key}", value, "a string")
            if key in have and value != have[key]:
                raise SqsApiError("QueueNameExists", f"A queue already exists with the same name and a different "
                                                     f"value for attribute {key} ({have[key]} in the manifest)")
        return {"QueueUrl": queue_url(host, self.manifest.account, queue.name)}

    async def _op_ListQueues(self, params: Params, host: str) -> dict:
        prefix = params.text("QueueNamePrefix", default="")
        assert prefix is not None
        names = [n for n in self.manifest.queues if n.startswith(prefix)]
        size = params.integer("MaxResults", 1, 1000, reason="must be between 1 and 1000.")
        token = params.text("NextToken")
        start = _page_start(token) if token else 0
        if size is None:  # (without MaxResults SQS answers up to 1,000 and no token)
            page, rest = names[start:start + 1000], False
        else:
            page, rest = names[start:start + size], start + size < len(names)
        doc: dict[str, Any] = {"QueueUrls": [queue_url(host, self.manifest.account, n) for n in page]} if page else {}
        if rest:
            doc["NextToken"] = base64.b64encode(json.dumps({"start": start + size}).encode()).decode()
        return doc

    async def _op_SendMessage(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        message = self._message(params, queue)
        sent = await self._call(self.queues.send, queue, message)
        self._sent(queue.name)
        return self._sent_doc(sent, message)

    async def _op_SendMessageBatch(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        entries = self._batch(params)
        ok, failed, ready = [], [], []
        for entry in entries:  # every entry checked before anything is written
            try:
                ready.append((entry["Id"], self._message(params.entry(entry, f"Entries.{entry['Id']}."), queue)))
            except QueueError as e:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": e.code, "Message": str(e)})
        total = sum(m.size for _, m in ready)
        if total > MAX_BODY:
            raise SqsApiError("BatchRequestTooLong", f"Batch requests cannot be longer than {MAX_BODY} bytes. "
                                                     f"You have sent {total} bytes.")

        results = await self._call(self.queues.send_batch, queue, [m for _, m in ready]) if ready else []
        for (ident, message), sent in zip(ready, results, strict=True):
            if isinstance(sent, QueueError):  # the queue's own rules (a FIFO send without a group, ...)
                failed.append({"Id": ident, "SenderFault": True, "Code": sent.code, "Message": str(sent)})
            else:
                ok.append({"Id": ident, **self._sent_doc(sent, message)})
        if ok:
            self._sent(queue.name)
        return {"Successful": ok, "Failed": failed}

    def _message(self, params: Params, queue: Queue) -> Outgoing:
        """A message to send, checked as SQS checks it, before anything is written."""
        body = params.doc.get("MessageBody")  # (not `text`: a lone surrogate is InvalidMessageContents)
        if body is None:
            raise SQS_ERRORS.missing(params.prefix + "MessageBody")
        if not isinstance(body, str):
            raise SQS_ERRORS.wrong_type(params.prefix + "MessageBody", body, "a string")
        delay = params.integer("DelaySeconds", 0, MAX_DELAY_S, reason="must be between 0 and 900, if provided.")
        message = self.queues.message(queue, body, params.doc.get("MessageAttributes"), delay,
                                      params.text("MessageGroupId"), params.text("MessageDeduplicationId"),
                                      params.doc.get("MessageSystemAttributes"))
        # The X-Amzn-Trace-Id header stands for every message of the request; an AWSTraceHeader
        # system attribute overrides it (SQS's X-Ray integration). (Read here, on the request's
        # task: the store's thread does not see the request's context.)
        if message.trace_header is None and _REQUEST_TRACE.get() is not None:
            message = dataclasses.replace(message, trace_header=_REQUEST_TRACE.get())
        return message

    @staticmethod
    def _sent_doc(sent: Sent, message: Outgoing) -> dict:
        import hashlib

        doc: dict[str, Any] = {"MD5OfMessageBody": hashlib.md5(message.body).hexdigest(),
                               "MessageId": sent.message_id}
        md5 = md5_of_attributes(message.attributes)
        if md5:
            doc["MD5OfMessageAttributes"] = md5
        if message.system_sent:
            doc["MD5OfMessageSystemAttributes"] = md5_of_system_attributes(message.trace_header)
        if sent.sequence is not None:
            doc["SequenceNumber"] = sent.sequence_number
        return doc

    @staticmethod
    def _batch(params: Params) -> list[dict]:
        entries = params.objects("Entries")
        if not entries:
            raise SqsApiError("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the "
                              "request.")
        if len(entries) > MAX_BATCH:
            raise SqsApiError("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are "
                              f"{MAX_BATCH}. You have sent {len(entries)}.")
        ids = []
        for n, entry in enumerate(entries, 1):
            ident = params.entry(entry, f"Entries.{n}.").required_text("Id")
            if not _ENTRY_ID.fullmatch(ident):
                raise SqsApiError("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, "
                                  "hyphens and underscores. It can be at most 80 letters long.")
            ids.append(ident)
        if len(set(ids)) != len(ids):
            raise SqsApiError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same "
                              "Id.")
        return entries

    async def _op_ReceiveMessage(self, params: Params, host: str) -> dict:
        import asyncio

        queue = self._queue(params)
        limit = params.integer("MaxNumberOfMessages", 1, MAX_RECEIVE, default=1,
                               reason="Must be between 1 and 10, if provided.")
        wait = params.integer("WaitTimeSeconds", 0, MAX_WAIT_S, default=0,
                              reason="Must be >= 0 and <= 20, if provided.")
        visibility = params.integer("VisibilityTimeout", 0, MAX_VISIBILITY_S,
                                    reason="Must be >= 0 and <= 43200, if provided.")
        system = params.strings("AttributeNames") + params.strings("MessageSystemAttributeNames")
        names = params.strings("MessageAttributeNames")
        params.text("ReceiveRequestAttemptId")
        assert limit is not None and wait is not None
        clock = self.queues.clock
        deadline_mono = clock.monotonic() + wait
        while True:
            arrival = self._arrival(queue.name)
            got = await self._call(self.queues.receive, queue, limit, visibility)
            remaining = deadline_mono - clock.monotonic()
            if got or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrival.wait(), min(remaining, RECHECK_S))
        return {"Messages": [self._message_doc(m, system, names) for m in got]} if got else {}

    @staticmethod
    def _message_doc(m: Message, system: list[str], names: list[str] | None) -> dict:
        try:
            body = m.body.decode()
        except UnicodeDecodeError:
            body = base64.b64encode(m.body).decode()
        doc: dict[str, Any] = {"MessageId": m.message_id, "ReceiptHandle": m.receipt, "MD5OfBody": m.md5_of_body,
                               "Body": body}
        attributes = _wanted(system, m.system_attributes())
        if attributes:
            doc["Attributes"] = attributes
        message_attributes = _wanted(names, deliverable_attributes(m.attributes)[0])
        if message_attributes:
            doc["MessageAttributes"] = message_attributes
            doc["MD5OfMessageAttributes"] = md5_of_attributes(message_attributes)
        return doc

    async def _op_DeleteMessage(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        receipt = self._receipt(params)
        await self._call(self.queues.delete, queue, receipt)
        return {}

    async def _op_DeleteMessageBatch(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        entries = self._batch(params)
        ok, failed, receipts = [], [], []
        for entry in entries:  # a bad entry fails alone
            receipt = entry.get("ReceiptHandle")
            if not isinstance(receipt, str) or not is_receipt(receipt):
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                               "Message": invalid_receipt(receipt)})
            else:
                receipts.append((entry["Id"], receipt))

        if receipts:  # one transaction
            await self._call(self.queues.delete_batch, queue, [r for _, r in receipts])
            ok += [{"Id": ident} for ident, _ in receipts]
        return {"Successful": ok, "Failed": failed}

    @staticmethod
    def _receipt(params: Params) -> str:
        receipt = params.text("ReceiptHandle")
        if not receipt or not is_receipt(receipt):
            raise SqsApiError("ReceiptHandleIsInvalid", invalid_receipt(receipt))
        return receipt

    async def _op_ChangeMessageVisibility(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        receipt = self._receipt(params)
        timeout = params.integer("VisibilityTimeout", 0, MAX_VISIBILITY_S, required=True,
                                 reason="must be between 0 and 43200.")
        assert timeout is not None
        await self._call(self.queues.change_visibility, queue, receipt, timeout)
        return {}

    async def _op_PurgeQueue(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        await self._call(self.queues.purge, queue)
        return {}

    async def _op_GetQueueAttributes(self, params: Params, host: str) -> dict:
        queue = self._queue(params)
        names = params.strings("AttributeNames")
        depth = await self._call(self.queues.depth, queue.name)
        attributes = {
            "ApproximateNumberOfMessages": str(depth.visible),
            "ApproximateNumberOfMessagesNotVisible": str(depth.in_flight),
            "ApproximateNumberOfMessagesDelayed": str(depth.delayed),
            **self._settings(queue),
        }
        return {"Attributes": _wanted(names, attributes)}

    def _settings(self, queue: Queue) -> dict[str, str]:
        """The queue's configuration, as SQS attributes."""
        attributes = {
            "QueueArn": self.queues.arn(queue.name),
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
                "deadLetterTargetArn": self.queues.arn(queue.redrive_dead_letter_queue),
                "maxReceiveCount": queue.redrive_max_receive_count})
        return attributes


def _page_start(token: str) -> int:
    """Where a ListQueues `NextToken` resumes; one lambdad did not give is refused, as SQS refuses it."""
    try:
        start = json.loads(base64.b64decode(token, validate=True))["start"]
    except (ValueError, TypeError, KeyError):
        start = None
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise SqsApiError("InvalidParameterValue", "Invalid NextToken value.")
    return start
