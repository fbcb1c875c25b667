"""The async path on a fake clock: attempts and waits, event age, throttles, every outcome's record and
dead-letter message, destinations, and stops. Invocations run inline on in-memory environments."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lambdad.dispatcher import Dispatcher
from lambdad.errors import FunctionNotFound, InvalidRequestContent, RequestTooLarge, TooManyRequests
from lambdad.logs import LogBook, read_records
from lambdad.manifest.model import AsyncConfig, Bucket, Function, Manifest, Queue, Target, TargetKind
from lambdad.outcomes.deliver import MAX_HOPS
from lambdad.runtime.functions import Functions
from lambdad.runtime.invocation import Outcome
from lambdad.runtime.pool import ACCOUNT_LIMIT
from lambdad.services.asyncinvoke import MAX_ASYNC_PAYLOAD_BYTES, queue_event
from lambdad.store import Store, deadletters, invocations, outbox, queues
from tests.component.twins import FakeSpawner, InlineExecutor
from tests.helpers import FakeClock

ERROR_DOC = b'{"errorMessage": "intentional failure", "errorType": "ValueError", "requestId": "", "stackTrace": []}'




class ThrottlingFunctions(Functions):
    """Functions whose first `throttles` calls find the concurrency full."""

    throttles = 0

    def invoke(self, name, payload, **kwargs):
        if self.throttles:
            self.throttles -= 1
            raise TooManyRequests(ACCOUNT_LIMIT)
        return super().invoke(name, payload, **kwargs)


class World:
    """A dispatcher over an in-memory store, in-memory environments and a fake clock."""

    def __init__(self, tmp_path: Path, script=None, **async_options) -> None:
        self.clock = FakeClock()
        self.calls: list[tuple[str, str, bytes]] = []
        self.script = script or (lambda req: (Outcome.success, b'{"ok": true}'))

        def record_and_run(req):
            self.calls.append((req.request_id, req.invoked_arn, req.payload))
            return self.script(req)

        self.spawner = FakeSpawner(record_and_run)
        reserved = async_options.pop("reserved", None)
        self.store = async_options.pop("store", None) or Store(":memory:")
        health = async_options.pop("health", None)
        cfg = AsyncConfig(**async_options)
        functions = {
            "f": Function("f", "app.handler", tmp_path, "python3", async_config=cfg, reserved_concurrency=reserved),
            "audit": Function("audit", "app.handler", tmp_path, "python3"),
        }
        self.manifest = Manifest(
            file=tmp_path / "lambdad.yaml", functions=functions, queues={"dlq": Queue("dlq"), "done": Queue("done")},
            buckets={"failed": Bucket("failed", tmp_path / "buckets" / "failed")},
        )
        self.functions = ThrottlingFunctions(
            self.manifest, LogBook(tmp_path / "logs"), self.clock, {}, spawn_override=self.spawner
        )
        self.warnings: list[str] = []
        self.dispatcher = Dispatcher(self.store, self.functions, self.clock, self.warnings.append, InlineExecutor(),
                                     health)

    def step(self) -> float:
        """One round of the outbox, then one of the dispatcher (the daemon runs each on its own loop)."""
        now = self.clock.time()
        files = self.dispatcher.outbox.step(now)
        return min(files, self.dispatcher.step(now))

    def advance_and_step(self, seconds: float) -> float:
        self.clock.advance(seconds)
        return self.step()

    def messages(self, queue: str) -> list[queues.Message]:
        with self.store.reading() as tx:
            return queues.peek(tx, queue, 100)

    def dead_letters(self) -> list[deadletters.DeadLetter]:
        with self.store.reading() as tx:
            return deadletters.listing(tx)

    def waiting(self) -> dict:
        with self.store.reading() as tx:
            return invocations.counts(tx)

    def notes(self) -> list[str]:
        self.functions.flush_logs()
        return [r.message for r in read_records(self.functions.logbook.folder, "f") if r.message.startswith("[lambdad]")]

    def close(self) -> None:
        self.functions.close()
        self.store.close()


@pytest.fixture
def make(tmp_path: Path):
    worlds = []

    def factory(script=None, **options) -> World:
        world = World(tmp_path, script, **options)
        worlds.append(world)
        return world

    yield factory
    for w in worlds:
        w.close()


def failing(req):
    return Outcome.error, ERROR_DOC


def test_success_is_settled_once_and_sends_the_success_record(make):
    w = make(on_success=Target(TargetKind.queue, "done"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"n": 1}')
    w.step()
    assert w.calls == [(rid, "arn:aws:lambda:us-east-1:123456789012:function:f", b'{"n": 1}')]
    assert w.waiting() == {}
    (message,) = w.messages("done")
    record = json.loads(message.body)
    assert record == {
        "version": "1.0",
        "timestamp": "2023-11-14T22:13:20.000Z",
        "requestContext": {"requestId": rid, "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
                           "condition": "Success", "approximateInvokeCount": 1},
        "requestPayload": {"n": 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "responsePayload": {"ok": True},
    }
    w.advance_and_step(3600)
    assert len(w.calls) == 1


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_a_failing_event_gets_exactly_1_plus_n_attempts_with_the_configured_waits(make, retries):
    w = make(failing, maximum_retry_attempts=retries, backoff_s=(60.0, 120.0),
             dead_letter=Target(TargetKind.queue, "dlq"), on_failure=Target(TargetKind.queue, "done"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"order": 7}')
    assert w.step() == pytest.approx(0.25)  # the first attempt ran; idle rounds are short
    waits = [60.0, 120.0][:retries]
    for wait in waits:
        tries = len(w.calls)
        w.advance_and_step(wait - 0.1)
        assert len(w.calls) == tries, "retried before its wait was over"
        w.advance_and_step(0.1)
        assert len(w.calls) == tries + 1
    assert len(w.calls) == 1 + retries
    assert {call[0] for call in w.calls} == {rid}  # one request id, every attempt
    assert w.waiting() == {}
    (dead,) = w.dead_letters()
    assert (dead.condition, dead.invocations, dead.error_type) == ("RetriesExhausted", 1 + retries, "ValueError")
    (dlq_message,) = w.messages("dlq")
    assert dlq_message.body == b'{"order": 7}'  # the original event, unchanged
    assert dlq_message.attributes == {
        "RequestID": {"DataType": "String", "StringValue": rid},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "intentional failure"},
    }
    record = json.loads(w.messages("done")[0].body)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"] == json.loads(ERROR_DOC)
    assert record["requestPayload"] == {"order": 7}
    notes = w.notes()
    assert [n.split(" failed")[0] for n in notes[:-1]] == [
        f"[lambdad] async attempt {i} of {1 + retries}" for i in range(1, 1 + retries)
    ]
    assert notes[-1].startswith(f"[lambdad] async failed for good: RetriesExhausted after {1 + retries} invocation(s)")


def test_a_retry_that_would_fall_past_the_event_age_ends_it(make):
    w = make(failing, maximum_event_age_s=90.0, backoff_s=(60.0, 120.0), on_failure=Target(TargetKind.queue, "done"))
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()
    w.advance_and_step(60)  # attempt 2; attempt 3 would come at 180 s, past 90 s
    assert len(w.calls) == 2
    record = json.loads(w.messages("done")[0].body)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert w.dead_letters()[0].condition == "EventAgeExceeded"


def test_an_event_that_waited_too_long_ends_without_running(make):
    w = make(maximum_event_age_s=60.0, dead_letter=Target(TargetKind.queue, "dlq"),
             on_failure=Target(TargetKind.queue, "done"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"late": true}')
    w.advance_and_step(61)  # e.g. the daemon was down
    assert w.calls == []
    record = json.loads(w.messages("done")[0].body)
    assert record["requestContext"] == {"requestId": rid, "functionArn": record["requestContext"]["functionArn"],
                                        "condition": "EventAgeExceeded", "approximateInvokeCount": 0}
    assert "responseContext" not in record
    assert w.messages("dlq")[0].attributes["ErrorCode"]["StringValue"] == "429"


def test_throttles_wait_1_2_4_seconds_and_use_no_attempt(make):
    w = make(failing, maximum_retry_attempts=0)
    w.functions.throttles = 3
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()  # throttled: due in 1 s
    for wait, throttles_left in ((1, 2), (2, 1), (4, 0)):
        w.advance_and_step(wait - 0.01)
        assert w.functions.throttles == throttles_left  # not tried again before the wait is over
        w.advance_and_step(0.01)
    assert w.functions.throttles == 0
    assert len(w.calls) == 1  # the one real attempt; zero retries allowed, and still it ran
    assert w.dead_letters()[0].invocations == 1


def test_throttled_until_the_age_runs_out(make):
    w = make(maximum_event_age_s=10.0, on_failure=Target(TargetKind.queue, "done"))
    w.functions.throttles = 100
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()
    for wait in (1, 2, 4):
        w.advance_and_step(wait)
    assert w.calls == []
    record = json.loads(w.messages("done")[0].body)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0


def test_zero_reserved_concurrency_fails_new_events_at_once(make):
    w = make(reserved=0, dead_letter=Target(TargetKind.queue, "dlq"), on_failure=Target(TargetKind.queue, "done"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"x": 1}')
    w.step()
    assert w.calls == []
    record = json.loads(w.messages("done")[0].body)
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record
    assert w.messages("dlq")[0].attributes["RequestID"]["StringValue"] == rid


def test_destination_function_gets_the_record_asynchronously(make):
    w = make(on_success=Target(TargetKind.function, "audit"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"a": 1}')
    w.step()
    w.step()
    (first, second) = w.calls
    assert first[0] == rid and second[1].endswith(":function:audit")
    assert second[0] != rid  # the destination invocation is a new event with its own id
    record = json.loads(second[2])
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["condition"] == "Success"


def test_a_loop_of_destinations_is_cut_after_16_hops(make):
    w = make(on_success=Target(TargetKind.function, "f"))
    w.dispatcher.invocations.enqueue("f", b"{}")
    for _ in range(MAX_HOPS + 5):
        w.step()
    assert len(w.calls) == MAX_HOPS
    assert any("chain of destinations is 16 long" in n for n in w.notes())
    assert w.waiting() == {}


def test_folder_and_bucket_targets_get_files(make, tmp_path: Path):
    w = make(failing, maximum_retry_attempts=0, dead_letter=Target(TargetKind.folder, str(tmp_path / "dlq")),
             on_failure=Target(TargetKind.bucket, "failed"))
    rid = w.dispatcher.invocations.enqueue("f", b'{"n": 2}')
    w.step()  # fails and records the files
    w.step()  # writes them
    (dlq_file,) = (tmp_path / "dlq").iterdir()
    assert dlq_file.name.endswith(f"-{rid}.json") and ":" not in dlq_file.name
    doc = json.loads(dlq_file.read_text())
    assert doc["Body"] == {"n": 2} and doc["MessageAttributes"]["RequestID"]["StringValue"] == rid
    (record_file,) = (tmp_path / "buckets" / "failed").rglob("*-*")
    assert str(record_file.relative_to(tmp_path / "buckets" / "failed")).startswith("aws/lambda/async/f/2023/11/14/")
    assert json.loads(record_file.read_text())["requestContext"]["condition"] == "RetriesExhausted"


def test_a_folder_that_cannot_be_written_is_retried_not_lost(make, tmp_path: Path):
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a folder should be")
    w = make(failing, maximum_retry_attempts=0, dead_letter=Target(TargetKind.folder, str(blocker / "dlq")))
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()
    w.step()
    assert len(w.warnings) == 1 and "cannot write" in w.warnings[0] and "retrying in 1s" in w.warnings[0]
    with w.store.reading() as tx:
        assert outbox.count(tx) == 1
    blocker.unlink()
    w.advance_and_step(1)
    assert len(list((blocker / "dlq").iterdir())) == 1
    with w.store.reading() as tx:
        assert outbox.count(tx) == 0


def test_events_for_a_full_function_wait_for_capacity_instead_of_throttling(make):
    w = make(reserved=1)
    for i in range(3):
        w.dispatcher.invocations.enqueue("f", json.dumps({"i": i}).encode())
    for _ in range(3):
        w.step()
    assert [json.loads(c[2])["i"] for c in w.calls] == [0, 1, 2]  # in order, one at a time
    with w.store.reading() as tx:
        assert invocations.stats(tx) == {"f": (3, 0)}


def test_a_graceful_stop_starts_nothing_new(make):
    w = make()
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.dispatcher.stop_claiming()
    w.step()
    assert w.calls == [] and w.waiting()["f"].queued == 1


def test_invocations_killed_by_a_forced_stop_run_again_later(make):
    w = make()

    def killed(req):
        w.dispatcher.abandon()  # the forced stop arrives while the handler runs
        return Outcome.crashed, b'{"errorType": "Runtime.ExitError"}'

    w.script = killed
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()
    counts = w.waiting()["f"]
    assert (counts.queued, counts.retrying, counts.in_flight) == (1, 0, 0)  # back, as if never tried
    assert w.dead_letters() == []


@pytest.mark.parametrize(
    ("function", "payload", "error"),
    [
        ("nobody", b"{}", FunctionNotFound),
        ("f", b"{not json", InvalidRequestContent),
        ("f", b'"' + b"x" * MAX_ASYNC_PAYLOAD_BYTES + b'"', RequestTooLarge),
    ],
)
def test_bad_submissions_are_refused_before_anything_is_queued(make, function, payload, error):
    w = make()
    with pytest.raises(error):
        w.dispatcher.invocations.enqueue(function, payload)
    assert w.waiting() == {}


def reload_to(w: World, manifest: Manifest) -> None:
    from lambdad.manifest.diff import manifest_diff

    w.functions.apply(manifest, manifest_diff(w.manifest, manifest))
    w.dispatcher.apply(manifest)
    w.manifest = manifest


def test_events_of_a_removed_function_wait_and_run_if_it_comes_back(make):
    w = make()
    full = w.manifest
    reload_to(w, replace(full, functions={"audit": full.functions["audit"]}))
    with w.store.transaction() as tx:  # queued before the reload (or by a CLI that read the old manifest)
        queue_event(tx, "f", b'{"n": 1}', w.clock.time(), "invoke", request_id="rid-1")
    w.step()
    w.advance_and_step(3600)
    assert w.calls == [] and w.waiting()["f"].queued == 1 and w.dead_letters() == []
    reload_to(w, full)
    w.step()
    assert [c[0] for c in w.calls] == ["rid-1"]


def test_events_of_a_removed_function_become_dead_letters_after_six_hours(make):
    w = make()
    with w.store.transaction() as tx:
        queue_event(tx, "f", b'{"n": 1}', w.clock.time(), "invoke", request_id="rid-1")
    reload_to(w, replace(w.manifest, functions={"audit": w.manifest.functions["audit"]}))
    w.advance_and_step(6 * 3600 - 120)
    assert w.waiting()["f"].queued == 1
    w.advance_and_step(180)
    (dead,) = w.dead_letters()
    assert (dead.request_id, dead.function, dead.condition) == ("rid-1", "f", "EventAgeExceeded")
    assert dead.error_message == "the function was removed from the manifest"
    assert "f" not in w.waiting() and w.calls == []


def test_a_bucket_removed_while_an_invocation_runs_still_gets_its_record(make, tmp_path: Path):
    def fail_after_a_reload(req):
        reload_to(w, replace(w.manifest, buckets={}))  # the save lands while the function runs
        return failing(req)

    w = make(fail_after_a_reload, maximum_retry_attempts=0, on_failure=Target(TargetKind.bucket, "failed"))
    w.dispatcher.invocations.enqueue("f", b'{"n": 3}')
    w.step()
    w.step()
    (record_file,) = (tmp_path / "buckets" / "failed").rglob("*-*")  # where its configuration said
    assert json.loads(record_file.read_text())["requestPayload"] == {"n": 3}
    assert "f" not in w.waiting()  # settled, not left leased
