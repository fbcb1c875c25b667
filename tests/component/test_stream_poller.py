"""Stream mappings on a fake clock with in-memory environments: order per shard, retries that hold
the shard, retry limits, bisection isolating a poison record, partial batch responses, record age,
lanes, starting positions, and resuming from the stored position."""

from __future__ import annotations

import base64
import json
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, KinesisDataStreamModel

from lambdad import stream_vocabulary as stream_ids
from lambdad.logs import LogBook
from lambdad.manifest.model import Function, Manifest, Queue, Stream, StreamTrigger, Target, TargetKind
from lambdad.outcomes.deliver import Deliverer
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.services.streams import StreamRecord, Streams
from lambdad.store import Store, queues, streams
from lambdad.triggers.mappings.streams import StreamPoller
from tests.component.twins import DeferredExecutor, FakeSpawner, InlineExecutor
from tests.helpers import FakeClock

ERROR = b'{"errorMessage": "x", "errorType": "ValueError", "requestId": "", "stackTrace": []}'




class World:
    def __init__(self, tmp_path: Path, stream: Stream, reply=None, **trigger) -> None:
        self.clock = FakeClock()
        self.batches: list[list[dict]] = []
        self.reply = reply or (lambda records: (Outcome.success, b"null"))

        def run(req):
            records = json.loads(req.payload)["Records"]
            self.batches.append(records)
            return self.reply(records)

        kind = "dynamodb" if stream.format == "dynamodb" else "kinesis"
        self.trigger = StreamTrigger(kind, stream.name, **trigger)
        fn = Function("f", "app.handler", tmp_path, "python3", events=(self.trigger,))
        self.manifest = Manifest(tmp_path / "lambdad.yaml", region="eu-west-1", account="111122223333",
                                 functions={"f": fn}, streams={stream.name: stream}, queues={"failed": Queue("failed")})
        self.stream = stream
        self.tmp_path = tmp_path
        self.functions = Functions(self.manifest, LogBook(tmp_path / "logs"), self.clock, {},
                                   spawn_override=FakeSpawner(run))
        self.store = Store(tmp_path / "store.sqlite3")
        self.streams = Streams(self.store, self.clock)
        self.deliverer = Deliverer(self.manifest)
        self.poller = self.new_poller()

    def new_poller(self, executor: Executor | None = None) -> StreamPoller:
        return StreamPoller(self.manifest, self.streams, self.functions, self.clock, self.deliverer,
                            executor or InlineExecutor())

    def reload(self, stream: Stream | None = None, **trigger) -> None:
        """A manifest save: the stream and the mapping's settings as given, the rest as they were."""
        self.stream = stream or self.stream
        self.trigger = replace(self.trigger, **trigger)
        fn = Function("f", "app.handler", self.tmp_path, "python3", events=(self.trigger,))
        self.manifest = replace(self.manifest, functions={"f": fn}, streams={self.stream.name: self.stream})
        self.deliverer.apply(self.manifest)  # (the daemon's dispatcher applies the deliverer it shares)
        self.poller.apply(self.manifest)

    def put(self, *items: str, key: str | None = None) -> list[StreamRecord]:
        return [self.streams.put(self.stream, key or d, d.encode()) for d in items]

    def run(self, rounds: int = 20, advance: float = 0.0) -> None:
        for _ in range(rounds):
            self.clock.advance(advance)
            self.poller.step(self.clock.time())

    def data(self) -> list[list[str]]:
        import base64

        return [[base64.b64decode(r["kinesis"]["data"]).decode() for r in b] for b in self.batches]

    def failures(self) -> list[dict]:
        with self.store.reading() as tx:
            return [json.loads(m.body) for m in queues.peek(tx, "failed", 100)]

    def close(self) -> None:
        self.functions.close()
        self.store.close()


ON_FAILURE = Target(TargetKind.queue, "failed")


def test_records_arrive_in_order_in_batches_and_the_position_survives_a_restart(tmp_path: Path):
    w = World(tmp_path, Stream("s"), batch_size=2)
    w.put("a", "b", "c", key="k")
    w.run()
    assert w.data() == [["a", "b"], ["c"]]
    KinesisDataStreamModel(**{"Records": w.batches[0]})
    record = w.batches[0][0]
    assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
    assert record["eventSourceARN"] == "arn:aws:kinesis:eu-west-1:111122223333:stream/s"
    w.poller = w.new_poller()  # a restart
    w.put("d", key="k")
    w.run()
    assert w.data()[-1] == ["d"] and len(w.batches) == 3  # nothing again, nothing skipped
    w.close()


def test_a_failing_batch_is_retried_and_holds_its_shard(tmp_path: Path):
    outcomes = iter([Outcome.error, Outcome.error, Outcome.success, Outcome.success])
    w = World(tmp_path, Stream("s"), reply=lambda r: (next(outcomes), ERROR), batch_size=2)
    w.put("a", "b", "c", key="k")
    w.run(rounds=10, advance=1.0)
    assert w.data() == [["a", "b"], ["a", "b"], ["a", "b"], ["c"]]  # c waited behind the failing batch
    w.close()


def test_past_maximum_retry_attempts_the_batch_is_reported_and_the_shard_moves_on(tmp_path: Path):
    w = World(tmp_path, Stream("s"), reply=lambda r: (Outcome.error if any("bad" in x["kinesis"]["partitionKey"]
                                                                             for x in r) else Outcome.success, ERROR),
              batch_size=1, maximum_retry_attempts=2, on_failure=ON_FAILURE)
    w.put("bad", key="bad")
    w.put("good", key="fine")
    w.run(rounds=10, advance=10.0)
    assert w.data() == [["bad"], ["bad"], ["bad"], ["good"]]  # 1 + 2 retries, then on
    (failure,) = w.failures()
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    info = failure["KinesisBatchInfo"]
    assert (info["shardId"], info["batchSize"], info["streamArn"]) == (
        "shardId-000000000000", 1, "arn:aws:kinesis:eu-west-1:111122223333:stream/s")
    assert failure["responseContext"]["functionError"] == "Unhandled"
    w.close()


def test_bisection_isolates_a_poison_record_and_its_neighbours_succeed(tmp_path: Path):
    def reply(records):
        return (Outcome.error, ERROR) if any(x["kinesis"]["partitionKey"] == "k5" for x in records) else (
            Outcome.success, b"null")

    w = World(tmp_path, Stream("s"), reply=reply, batch_size=8, bisect_batch_on_function_error=True,
              maximum_retry_attempts=1, on_failure=ON_FAILURE)
    for i in range(8):
        w.put(f"r{i}", key=f"k{i}")
    w.run(rounds=40, advance=10.0)
    succeeded = [x for batch, ok in zip(w.data(), [not any(d == "r5" for d in b) for b in w.data()], strict=True)
                 if ok for x in batch]
    assert succeeded == [f"r{i}" for i in range(8) if i != 5]  # each neighbour once, in order
    (failure,) = w.failures()
    assert failure["KinesisBatchInfo"]["batchSize"] == 1  # the poison record alone
    w.close()


def test_a_partial_batch_response_resumes_from_the_lowest_failed_record(tmp_path: Path):
    first = []

    def reply(records):
        if not first:
            first.append(True)
            failed = [r["kinesis"]["sequenceNumber"] for r in records if r["kinesis"]["partitionKey"] in ("c", "d")]
            return Outcome.success, json.dumps({"batchItemFailures": [{"itemIdentifier": s} for s in failed]}).encode()
        return Outcome.success, b'{"batchItemFailures": []}'

    w = World(tmp_path, Stream("s"), reply=reply, batch_size=10, report_batch_item_failures=True)
    for key in "abcde":
        w.put(key, key=key)
    w.run(rounds=10, advance=1.0)
    assert w.data() == [list("abcde"), list("cde")]
    w.close()


def test_records_past_their_maximum_age_are_reported_not_invoked(tmp_path: Path):
    w = World(tmp_path, Stream("s"), maximum_record_age_s=60, on_failure=ON_FAILURE)
    w.put("old", key="k")
    w.clock.advance(61)  # (the poller does not run meanwhile)
    w.put("new", key="k")
    w.run()
    assert w.data() == [["new"]]
    (failure,) = w.failures()
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded" and "responseContext" not in failure
    w.close()


def test_lanes_keep_order_per_partition_key(tmp_path: Path):
    w = World(tmp_path, Stream("s"), batch_size=100, parallelization_factor=3)
    for i in range(30):
        w.put(f"{i % 5}-{i:02d}", key=f"key-{i % 5}")
    w.run()
    seen: dict[str, list[str]] = {}
    for batch in w.data():
        for item in batch:
            seen.setdefault(item.split("-")[0], []).append(item)
    assert all(items == sorted(items) for items in seen.values()) and sum(map(len, seen.values())) == 30
    assert len(w.batches) > 1  # more than one lane ran
    w.close()


def test_latest_skips_what_came_before(tmp_path: Path):
    w = World(tmp_path, Stream("s"), starting_position="LATEST")
    w.put("before", key="k")
    w.run(rounds=1)
    w.put("after", key="k")
    w.run()
    assert w.data() == [["after"]]
    w.close()


def test_dynamodb_change_records(tmp_path: Path):
    w = World(tmp_path, Stream("t", format="dynamodb"))
    change = {"eventName": "MODIFY", "Keys": {"Id": {"N": "1"}}, "NewImage": {"Id": {"N": "1"}, "v": {"S": "b"}},
              "OldImage": {"Id": {"N": "1"}, "v": {"S": "a"}}}
    w.streams.put(w.stream, '{"Id": {"N": "1"}}', json.dumps(change).encode())
    w.run()
    (record,) = w.batches[0]
    DynamoDBStreamModel(**{"Records": [record]})
    assert record["eventName"] == "MODIFY" and record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert record["dynamodb"]["OldImage"]["v"] == {"S": "a"}
    w.close()


def test_shards_follow_the_md5_of_the_partition_key():
    assert stream_ids.shard_of("a", 1) == 0
    counts = [0, 0, 0, 0]
    for i in range(4000):
        counts[stream_ids.shard_of(f"key-{i}", 4)] += 1
    assert all(900 < c < 1100 for c in counts)
    assert stream_ids.hash_range(0, 4) == (0, 2**126 - 1) and stream_ids.hash_range(3, 4)[1] == 2**128 - 1
    assert stream_ids.parse_sequence_number(stream_ids.sequence_number("s", 3, 42)) == (3, 42)


def test_by_default_a_failing_batch_is_retried_until_its_records_expire(tmp_path: Path):
    w = World(tmp_path, Stream("s", retention_s=3600.0), reply=lambda records: (Outcome.error, ERROR),
              on_failure=ON_FAILURE)
    w.put("bad", key="k")
    w.run(rounds=400, advance=10.0)  # 4,000 s: retries every 10 s at most, then retention ends them
    assert 300 < len(w.batches) < 400
    (failure,) = w.failures()
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    w.reply = lambda records: (Outcome.success, b"null")
    w.put("next", key="k")
    w.run()
    assert w.data()[-1] == ["next"]  # the shard moved on
    w.close()


def test_records_that_expired_unread_are_skipped_silently(tmp_path: Path):
    w = World(tmp_path, Stream("s", retention_s=3600.0), on_failure=ON_FAILURE)
    w.put("stale", key="k")
    w.clock.advance(3601)  # the daemon was down longer than the retention
    w.put("fresh", key="k")
    w.run()
    w.clock.advance(1)  # between two expiry passes: a record that aged out but is still stored
    Streams(w.store, FakeClock(start=w.clock.time() - 3601)).put(w.stream, "k", b"aged")
    w.put("later", key="k")
    w.run()
    assert w.data() == [["fresh"], ["later"]] and w.failures() == []
    w.close()




def test_a_changed_parallelization_factor_skips_nothing(tmp_path: Path):
    holding = True  # the lane with k0 fails until the reload
    done: list[str] = []

    def reply(records):
        data = [base64.b64decode(x["kinesis"]["data"]).decode() for x in records]
        if holding and any(d.startswith("0-") for d in data):
            return Outcome.error, ERROR
        done.extend(data)
        return Outcome.success, b"null"

    w = World(tmp_path, Stream("s"), reply=reply, batch_size=5, parallelization_factor=2)
    for i in range(20):
        w.put(f"{i % 4}-{i:02d}", key=f"k{i % 4}")
    w.run(rounds=5, advance=1.0)
    assert done and not any(d.startswith("0-") for d in done)  # the other lane went ahead
    holding = False
    w.reload(parallelization_factor=1)
    w.run(rounds=10, advance=1.0)
    assert set(done) == {f"{i % 4}-{i:02d}" for i in range(20)}  # the held lane's records too: none skipped
    with w.store.reading() as tx:
        assert set(streams.positions(tx, "f/s")) == {(0, 0)}  # the old lanes are gone
    w.close()


def test_a_shard_the_stream_no_longer_has_is_drained(tmp_path: Path):
    w = World(tmp_path, Stream("s", shards=2), batch_size=100)
    keys = [f"key-{i}" for i in range(20)]
    for key in keys:
        w.put(key, key=key)
    assert {stream_ids.shard_of(k, 2) for k in keys} == {0, 1}
    w.reload(stream=Stream("s", shards=1))
    w.put("later", key="key-0")
    w.run()
    assert {d for batch in w.data() for d in batch} == {*keys, "later"}
    w.close()


def test_a_shard_added_to_a_running_mapping_starts_at_its_first_record(tmp_path: Path):
    w = World(tmp_path, Stream("s", shards=1), starting_position="LATEST")
    w.run(rounds=1)
    w.reload(stream=Stream("s", shards=2))
    keys = [f"key-{i}" for i in range(20)]
    for key in keys:  # put before the poller sees the new shard
        w.put(key, key=key)
    w.run()
    assert {d for batch in w.data() for d in batch} == set(keys)
    w.close()


def test_a_batch_running_through_a_reload_is_set_aside_and_reported_once(tmp_path: Path):
    w = World(tmp_path, Stream("s"), reply=lambda records: (Outcome.error, ERROR), maximum_retry_attempts=0,
              on_failure=ON_FAILURE)
    deferred = DeferredExecutor()
    w.poller = w.new_poller(deferred)
    w.put("a", key="k")
    w.run(rounds=1)
    assert len(deferred.jobs) == 1  # running
    w.reload(enabled=False)
    w.reload(enabled=True)
    w.run(rounds=3)
    assert len(deferred.jobs) == 1  # the mapping waits for its batch in flight
    deferred.run_all()  # it fails; its result is set aside (the mapping was rebuilt meanwhile)
    assert w.failures() == []
    w.run(rounds=3)
    deferred.run_all()
    w.run(rounds=3)
    assert w.data() == [["a"], ["a"]]
    (failure,) = w.failures()
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    w.close()


def test_an_idle_lane_does_not_rescan_the_others_records(tmp_path: Path):
    w = World(tmp_path, Stream("s"), parallelization_factor=2)
    for i in range(10):
        w.put(f"x{i}", key="one-key")  # all in one lane
    w.run()
    idle = [c for c in w.poller.cursors("f/s") if c.position == 0]
    assert len(idle) == 1 and idle[0].scanned == 10
    w.close()


def test_retries_used_up_by_reported_failures_are_not_a_function_error(tmp_path: Path):
    def reply(records):
        return Outcome.success, json.dumps({"batchItemFailures": [
            {"itemIdentifier": records[0]["kinesis"]["sequenceNumber"]}]}).encode()

    w = World(tmp_path, Stream("s"), reply=reply, report_batch_item_failures=True, maximum_retry_attempts=1,
              on_failure=ON_FAILURE)
    w.put("a", key="k")
    w.run(rounds=5, advance=5.0)
    (failure,) = w.failures()
    assert failure["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    w.close()


def test_dynamodb_sequence_numbers_and_view_types(tmp_path: Path):
    w = World(tmp_path, Stream("t", format="dynamodb", view_type="KEYS_ONLY"))
    change = {"eventName": "INSERT", "Keys": {"Id": {"N": "1"}}, "NewImage": {"Id": {"N": "1"}}}
    w.streams.put(w.stream, "k", json.dumps(change).encode())
    w.run()
    (record,) = w.batches[0]
    body = record["dynamodb"]
    assert 21 <= len(body["SequenceNumber"]) <= 40 and body["SequenceNumber"].isdigit()
    assert body["StreamViewType"] == "KEYS_ONLY" and "NewImage" not in body
    DynamoDBStreamModel(**{"Records": [record]})
    w.close()


def test_a_folder_destination_gets_the_invocation_payload_too(tmp_path: Path):
    from lambdad.store import outbox

    folder = str(tmp_path / "failed")
    w = World(tmp_path, Stream("s"), reply=lambda records: (Outcome.error, ERROR), maximum_retry_attempts=0,
              on_failure=Target(TargetKind.folder, folder))
    w.put("a", key="k")
    w.run()
    with w.store.reading() as tx:
        (pending,) = outbox.due(tx, w.clock.time() + 1)
    assert pending.folder == folder and pending.name.startswith("aws/lambda/")
    doc = json.loads(pending.content)
    assert doc["KinesisBatchInfo"]["batchSize"] == 1
    assert [base64.b64decode(r["kinesis"]["data"]) for r in json.loads(doc["payload"])["Records"]] == [b"a"]
    w.close()
