"""The async invocations' way in (`services.asyncinvoke`) and the outcome layer's deliverer and outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.errors import FunctionNotFound, UsageError
from lambdad.manifest.model import Function, Manifest, Queue, Target, TargetKind
from lambdad.outcomes.deliver import MAX_HOPS, Deliverer
from lambdad.outcomes.outbox import Outbox
from lambdad.services.asyncinvoke import AsyncInvocations
from lambdad.store import Store, deadletters, invocations, outbox, queues
from lambdad.store.deadletters import DeadLetter
from tests.helpers import FakeClock


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def manifest(tmp_path: Path, *names: str) -> Manifest:
    return Manifest(file=tmp_path / "lambdad.yaml", queues={"q": Queue("q")},
                    functions={n: Function(n, "app.handler", tmp_path, "python3") for n in names})


class Wakes:
    def __init__(self) -> None:
        self.files = self.events = 0

    def deliverer(self, m: Manifest) -> Deliverer:
        return Deliverer(m, on_files=self.file, on_enqueued=self.event)

    def file(self) -> None:
        self.files += 1

    def event(self) -> None:
        self.events += 1


def test_a_committed_file_wakes_the_outbox_and_a_queue_message_does_not(store, tmp_path: Path):
    wakes = Wakes()
    deliverer = wakes.deliverer(manifest(tmp_path, "f"))
    queued = store.write(lambda tx: deliverer.send(tx, Target(TargetKind.queue, "q"), b"{}", 0.0, function="f"))
    deliverer.committed([queued])
    assert wakes.files == 0
    filed = store.write(lambda tx: deliverer.send(tx, Target(TargetKind.folder, str(tmp_path / "out")), b"{}", 0.0,
                                                  function="f", key="a.json"))
    deliverer.committed([filed])
    assert wakes.files == 1
    clock = FakeClock()
    Outbox(store, clock).step(clock.time())
    assert (tmp_path / "out" / "a.json").read_bytes() == b"{}"
    with store.reading() as tx:
        assert outbox.count(tx) == 0 and len(queues.peek(tx, "q", 10)) == 1


def test_each_commit_announces_its_own_files_whatever_other_threads_announced(store, tmp_path: Path):
    """Two settles at once: the first to commit must not announce (and so swallow the wake of) a
    file the other's transaction has not committed yet."""
    wakes = Wakes()
    deliverer = wakes.deliverer(manifest(tmp_path, "f"))
    folder = Target(TargetKind.folder, str(tmp_path / "out"))
    with store.transaction() as tx:  # the slower settle: sent, not yet committed
        slow = deliverer.send(tx, folder, b"{}", 0.0, function="f", key="slow.json")
        fast = None
        deliverer.committed([fast])  # another thread's commit that delivered nothing wakes nobody
        assert wakes.files == 0
    deliverer.committed([slow])
    assert wakes.files == 1


def test_a_function_destination_past_the_longest_chain_is_not_sent(store, tmp_path: Path):
    wakes = Wakes()
    deliverer = wakes.deliverer(manifest(tmp_path, "f", "g"))
    target = Target(TargetKind.function, "g")
    assert store.write(lambda tx: deliverer.send(tx, target, b"{}", 0.0, function="f", hops=MAX_HOPS)) is None
    sent = store.write(lambda tx: deliverer.send(tx, target, b"{}", 0.0, function="f", hops=MAX_HOPS - 1))
    deliverer.committed([sent])
    assert sent is not None and sent.label == "function:g" and wakes.events == 1
    with store.reading() as tx:
        assert invocations.counts(tx)["g"].queued == 1


def dead_letter(request_id: str, function: str) -> DeadLetter:
    return DeadLetter(0, request_id, function, b'{"n": 1}', "RetriesExhausted", 1, None, "", None, "", None, 0.0, 1.0)


def test_a_redrive_of_a_function_that_is_gone_changes_nothing(store, tmp_path: Path):
    clock = FakeClock()
    woken: list[bool] = []
    service = AsyncInvocations(store, clock, manifest(tmp_path, "f"), on_enqueued=lambda: woken.append(True))
    store.write(lambda tx: [deadletters.add(tx, dead_letter("r1", "f")), deadletters.add(tx, dead_letter("r2", "g"))])
    with pytest.raises(FunctionNotFound):
        service.redrive(None)
    with pytest.raises(UsageError, match="no dead letter with id 99"):
        service.redrive([1, 99])
    assert len(service.dead_letters()) == 2 and woken == []
    assert service.redrive(None, "f") == 1
    assert [d.request_id for d in service.dead_letters()] == ["r2"] and woken == [True]
    with store.transaction() as tx:
        (ev,) = invocations.claim(tx, ["f"], clock.time(), 60.0, 10)
    assert (ev.source, ev.payload) == ("redrive", b'{"n": 1}') and ev.request_id != "r1" and ev.trace


def test_a_poke_only_wakes_the_loop_and_runs_nothing_on_the_callers_thread(tmp_path: Path):
    from tests.component.test_dispatcher import World

    w = World(tmp_path)
    try:
        w.dispatcher.invocations.enqueue("f", b"{}")
        w.dispatcher.wake()  # (a bucket watcher's or a schedule's thread)
        assert w.calls == []
        w.step()
        assert len(w.calls) == 1
    finally:
        w.close()
