"""A thread-pool task that raises (a bug in an outcome handler) or is refused (the pool is shutting
down): its failure is logged and the event or batch it held is put back, to be delivered later."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lambdad.manifest.model import Queue, Stream
from tests.component import test_dispatcher, test_sqs_poller, test_stream_poller
from tests.component.faults import PoolLikeExecutor


def raising_once(real):
    """`real`, except that its first call raises."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a bug in an outcome handler")
        return real(*args, **kwargs)

    return wrapper


def test_an_async_event_whose_outcome_handler_raises_is_logged_and_runs_again(tmp_path: Path, caplog):
    w = test_dispatcher.World(tmp_path, test_dispatcher.failing, maximum_retry_attempts=1, backoff_s=(60.0,))
    w.dispatcher._executor = PoolLikeExecutor()
    w.dispatcher._note = raising_once(w.dispatcher._note)  # the note of the first failure raises
    try:
        with caplog.at_level(logging.ERROR):
            w.dispatcher.invocations.enqueue("f", b"{}")
            w.step()
        assert "a bug in an outcome handler" in caplog.text and "async invocation of f" in caplog.text
        assert w.waiting()["f"].in_flight == 0  # not left leased for the invocation timeout + 60 s
        assert w.dispatcher._claimed["f"] == 0  # nor its slot
        w.advance_and_step(1.0)  # runs again, and this time its failure is handled: a retry in 60 s
        assert len(w.calls) == 2
        assert w.waiting()["f"].retrying == 1
    finally:
        w.close()


def test_an_async_event_the_pool_refuses_is_put_back(tmp_path: Path):
    w = test_dispatcher.World(tmp_path)
    executor = w.dispatcher._executor = PoolLikeExecutor()
    try:
        executor.shutdown()
        w.dispatcher.invocations.enqueue("f", b"{}")
        w.step()
        assert w.waiting()["f"].in_flight == 0 and w.dispatcher._claimed["f"] == 0
        executor.shut = False
        w.advance_and_step(1.0)
        assert len(w.calls) == 1 and w.waiting() == {}
    finally:
        w.close()


def test_an_sqs_batch_whose_handling_raises_is_logged_and_delivered_again_soon(tmp_path: Path, caplog):
    w = test_sqs_poller.make_world(tmp_path, Queue("q", visibility_timeout_s=300))
    w.poller._executor = PoolLikeExecutor()
    w.poller._judge = raising_once(w.poller._judge)
    try:
        w.send("a")
        with caplog.at_level(logging.ERROR):
            w.step()
        assert "a bug in an outcome handler" in caplog.text and "from q to f" in caplog.text
        assert w.bodies() == [["a"]] and w.left() == ["a"]
        w.step(1.0)  # visible again at once, after the mapping's pause: not after the 300 s visibility timeout
        assert w.bodies() == [["a"], ["a"]] and w.left() == []
    finally:
        w.close()


def test_a_stream_batch_whose_handling_raises_is_logged_and_retried_in_order(tmp_path: Path, caplog):
    w = test_stream_poller.World(tmp_path, Stream("s"))
    w.poller = w.new_poller(PoolLikeExecutor())
    w.poller._settle = raising_once(w.poller._settle)
    try:
        w.put("a", "b")
        with caplog.at_level(logging.ERROR):
            w.run(rounds=3)
        assert "a bug in an outcome handler" in caplog.text and "from s to f" in caplog.text
        w.run(rounds=3, advance=1.0)
        assert w.data() == [["a", "b"], ["a", "b"]]
        w.put("c")
        w.run(rounds=3)
        assert w.data()[-1] == ["c"]
    finally:
        w.close()


@pytest.mark.parametrize("poller", ["sqs", "streams"])
def test_a_batch_the_pool_refuses_leaves_the_mapping_free(tmp_path: Path, poller: str):
    if poller == "sqs":
        w = test_sqs_poller.make_world(tmp_path)
        w.send("a")
    else:
        w = test_stream_poller.World(tmp_path, Stream("s"))
        w.put("a")
    executor = PoolLikeExecutor()
    w.poller._executor = executor
    try:
        executor.shutdown()
        w.poller.step(w.clock.time())  # refused: no exception out of the round, nothing left "running"
        executor.shut = False
        w.clock.advance(1.0)
        w.poller.step(w.clock.time())
        delivered = w.bodies() if poller == "sqs" else w.data()
        assert delivered == [["a"]]
    finally:
        w.close()


def test_a_failure_starting_the_runtimes_is_said_not_lost(tmp_path: Path):
    from lambdad.daemon import Daemon
    from lambdad.manifest.model import Endpoint, Function, Manifest
    from lambdad.runtime.functions import Functions
    from lambdad.statedir import StateDir
    from tests.component.twins import FakeSpawner
    from tests.helpers import FakeClock, TextSink, wait_for

    class Broken(Functions):
        def start_runtimes(self):
            raise OSError(24, "Too many open files")

    fn = Function(name="f", handler="app.handler", code=tmp_path, python="python3")
    manifest = Manifest(file=tmp_path / "lambdad.yaml", functions={"f": fn}, api=Endpoint("127.0.0.1", 0))
    out = TextSink()
    clock = FakeClock()
    daemon = Daemon(manifest, StateDir(tmp_path / "state"), out=out, clock=clock,
                    make_functions=lambda m, book, c: Broken(m, book, c, {}, spawn_override=FakeSpawner()))
    daemon.start()
    try:
        wait_for(lambda: "warning: starting the runtimes failed: [Errno 24] Too many open files" in out.text,
                 what="the warning")
    finally:
        daemon.begin_stop("test")
        daemon.step(clock.monotonic())


def test_the_daemon_writes_what_fails_into_daemon_json_and_clears_it(tmp_path: Path):
    import json

    from lambdad.daemon import Daemon
    from lambdad.manifest.model import Endpoint, Function, Manifest
    from lambdad.runtime.functions import Functions
    from lambdad.statedir import StateDir
    from tests.component.twins import FakeSpawner
    from tests.helpers import FakeClock, TextSink

    fn = Function(name="f", handler="app.handler", code=tmp_path, python="python3")
    manifest = Manifest(file=tmp_path / "lambdad.yaml", functions={"f": fn}, api=Endpoint("127.0.0.1", 0))
    clock = FakeClock()
    daemon = Daemon(manifest, StateDir(tmp_path / "state"), out=TextSink(), clock=clock,
                    make_functions=lambda m, book, c: Functions(m, book, c, {}, spawn_override=FakeSpawner()))
    daemon.start()
    info = tmp_path / "state" / "daemon.json"
    try:
        daemon.health.failing("buckets", OSError(28, "No space left on device"))
        daemon.step(clock.monotonic())
        assert json.loads(info.read_text())["failing"] == {
            "buckets": {"error": "No space left on device", "since": clock.time(), "attempts": 1}}
        daemon.health.recovered("buckets")
        daemon.step(clock.monotonic())
        assert "failing" not in json.loads(info.read_text())
    finally:
        daemon.begin_stop("test")
        daemon.step(clock.monotonic())
