"""`lambdad stream put`: a record into a local Kinesis or DynamoDB stream through the streams
service, refused as PutRecord refuses it. A running daemon's mappings see it within a quarter of a second.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from lambdad.cli.common import load, open_services, print_json
from lambdad.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from lambdad.manifest.model import Stream


def cmd_stream_put(args: argparse.Namespace) -> int:
    """Commit the record; a running daemon's mappings see it within a quarter of a second."""
    from lambdad.services.streams import Streams
    from lambdad.stream_vocabulary import StreamError, number_of, shard_name

    manifest = load(args)
    if args.name not in manifest.streams:
        known = ", ".join(manifest.streams) or "none defined"
        raise UsageError(f"stream {args.name!r} is not defined (streams: {known})")
    stream = manifest.streams[args.name]
    data, key = _change(args, stream) if stream.format == "dynamodb" else _record(args, stream)
    try:  # PutRecord's checks (the service's), before the state folder is opened
        Streams.check(key, data)
    except StreamError as e:
        raise UsageError(f"{e.code}: {e}") from None
    with open_services(args, manifest) as services:
        record = services.streams.put(stream, key, data)
    doc = {"ShardId": shard_name(stream, record.shard), "SequenceNumber": number_of(stream, record.shard, record.seq)}
    if args.json:
        print_json(doc)
    else:
        print(f"put into {stream.name}: {doc['ShardId']} SequenceNumber {doc['SequenceNumber']}")
    return EXIT_OK


def _change(args: argparse.Namespace, stream: Stream) -> tuple[bytes, str]:
    """A dynamodb stream's record: the change in `--change FILE`, keyed by the item's keys."""
    from lambdad.payloads.streams import change_record, dynamodb_partition_key

    if not args.change:
        raise UsageError(f"stream {stream.name!r} is a dynamodb stream: give --change FILE")
    try:
        text = Path(args.change).read_text()
    except OSError as e:
        raise UsageError(f"cannot read {args.change!r}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{args.change}: not JSON ({e})") from None
    try:
        change = change_record(doc)
    except ValueError as e:
        raise UsageError(f"{args.change}: {e}") from None
    return json.dumps(change).encode(), dynamodb_partition_key(change)


def _record(args: argparse.Namespace, stream: Stream) -> tuple[bytes, str]:
    """A kinesis stream's record: the data (or `--data-file`), keyed by `--partition-key` or else the data."""
    if args.change:
        raise UsageError(f"stream {stream.name!r} is a kinesis stream: --change is for dynamodb streams")
    if (args.data is None) == (args.data_file is None):
        raise UsageError("give the data, or --data-file")
    try:
        data = Path(args.data_file).read_bytes() if args.data_file else args.data.encode()
    except OSError as e:
        raise UsageError(f"cannot read {args.data_file!r}: {e.strerror}") from None
    return data, args.partition_key or (args.data if args.data else args.data_file)
