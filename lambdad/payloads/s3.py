"""S3 event notifications, one record per notification, exactly as S3 writes them."""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import quote_plus

from lambdad.clock import iso_millis

#: Who lambdad says made the request (S3 puts the requester's principal id here).
LOCAL_PRINCIPAL = "AWS:AIDALAMBDADLOCAL"
#: The bucket owner's canonical id stand-in.
LOCAL_OWNER = "LAMBDADLOCALOWNER"

#: Characters S3 leaves as they are when it form-encodes a key (like Java's URLEncoder, plus the
#: slash, which S3 keeps so that "folders" read naturally).
_SAFE = "/-_.*"


def encode_key(key: str) -> str:
    """The key as it appears in `s3.object.key`: form-encoded, a space as `+`, `+` as `%2B`, UTF-8 escapes.

    `urllib.parse.unquote_plus` gives the original back, as AWS tells handler authors to do.
    """
    return quote_plus(key, safe=_SAFE)


def s3_record(
    *,
    event_name: str,
    bucket: str,
    key: str,
    region: str,
    now: float,
    configuration_id: str,
    sequencer: str,
    size: int | None = None,
    etag: str | None = None,
    version_id: str | None = None,
) -> dict[str, Any]:
    """One S3 notification record. `event_name` has no `s3:` prefix (`ObjectCreated:Put`).

    Delete events carry no size and no eTag, as S3's do; `versionId` appears only on versioned buckets.
    """
    obj: dict[str, Any] = {"key": encode_key(key)}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    if version_id is not None:
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": iso_millis(now),
        "eventName": event_name,
        "userIdentity": {"principalId": LOCAL_PRINCIPAL},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": os.urandom(8).hex().upper(),
            "x-amz-id-2": base64.b64encode(os.urandom(56)).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": LOCAL_OWNER},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_event(record: dict[str, Any]) -> dict[str, Any]:
    """S3 sends exactly one record per notification."""
    return {"Records": [record]}


def sequencer_after(previous: str | None, now_ns: int) -> str:
    """A sequencer greater than `previous` (S3 compares them per key, after right-padding with zeros)."""
    value = now_ns
    if previous:
        value = max(value, int(previous, 16) + 1)
    return f"{value:018X}"
