"""FunctionPool and Functions with in-memory environments and a fake clock: reuse, limits, reaping."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lambdad.errors import FunctionNotFound, TooManyRequests
from lambdad.logs import LogBook, read_records
from lambdad.manifest.model import Function, Manifest
from lambdad.runtime.functions import Functions, ShuttingDown
from lambdad.runtime.invocation import Outcome
from lambdad.runtime.pool import Limiter
from tests.component.twins import FakeSpawner
from tests.helpers import FakeClock, wait_for


def manifest(tmp_path: Path, concurrency: int = 10, **functions: dict) -> Manifest:
    fns = {
        name: Function(name=name, handler="app.handler", code=tmp_path, python="python3", **opts)
        for name, opts in functions.items()
    }
    return Manifest(file=tmp_path / "lambdad.yaml", concurrency=concurrency, functions=fns)


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner()


def make(tmp_path: Path, spawner: FakeSpawner, clock: FakeClock, concurrency: int = 10, **functions: dict):
    return Functions(
        manifest(tmp_path, concurrency, **functions), LogBook(tmp_path / "logs"), clock, {}, spawn_override=spawner
    )


def test_warm_environment_is_reused(tmp_path, spawner, clock):
    functions = make(tmp_path, spawner, clock, f={})
    for _ in range(3):
        assert functions.invoke("f", b'{"n": 1}').payload == b'{"n": 1}'
    assert len(spawner.spawned) == 1 and len(spawner.spawned[0].invocations) == 3
    assert functions.pool("f").cold_starts == 1
    functions.close()


def test_a_lost_environment_is_replaced_by_a_cold_start(tmp_path, spawner, clock):
    outcomes = iter([Outcome.success, Outcome.timeout, Outcome.success])
    spawner.script = lambda req: (next(outcomes), b"{}")
    functions = make(tmp_path, spawner, clock, f={})
    results = [functions.invoke("f", b"{}").outcome for _ in range(3)]
    assert results == [Outcome.success, Outcome.timeout, Outcome.success]
    assert [len(e.invocations) for e in spawner.spawned] == [2, 1]
    functions.close()


def test_function_errors_keep_the_environment(tmp_path, spawner, clock):
    spawner.script = lambda req: (Outcome.error, b'{"errorType": "ValueError"}')
    functions = make(tmp_path, spawner, clock, f={})
    functions.invoke("f", b"{}")
    functions.invoke("f", b"{}")
    assert len(spawner.spawned) == 1
    functions.close()


def test_interpreter_that_cannot_start_is_a_runtime_exit_error(tmp_path, spawner, clock):
    spawner.fail_with = "python9 failed to start the lambdad runtime: no such file"
    functions = make(tmp_path, spawner, clock, f={})
    result = functions.invoke("f", b"{}", request_id="r-1")
    assert result.outcome is Outcome.crashed and result.function_error == "Unhandled"
    assert json.loads(result.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r-1 Error: Runtime exited with error: python9 failed to start the lambdad runtime: "
        "no such file",
    }
    functions.flush_logs()
    assert [r.message for r in read_records(tmp_path / "logs", "f")] == [
        "[ERROR] Runtime.ExitError: python9 failed to start the lambdad runtime: no such file"
    ]
    functions.close()


def test_limits_refuse_at_once_and_free_the_slot_after(tmp_path, clock):
    gate = threading.Event()
    spawner = FakeSpawner(gate=gate)
    functions = make(tmp_path, spawner, clock, concurrency=3, a={}, b={}, r={"reserved_concurrency": 1})
    threads = [threading.Thread(target=functions.invoke, args=(name, b"{}")) for name in ("a", "b", "r")]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(spawner.spawned) == 3 and all(e.entered.is_set() for e in spawner.spawned),
                 what="three invocations running")
        with pytest.raises(TooManyRequests) as shared:
            functions.invoke("a", b"{}")
        assert shared.value.reason == "ConcurrentInvocationLimitExceeded"
        with pytest.raises(TooManyRequests) as reserved:
            functions.invoke("r", b"{}")
        assert reserved.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert functions.in_flight == 3
    finally:
        gate.set()
        for t in threads:
            t.join(10)
    assert functions.in_flight == 0
    assert functions.invoke("r", b"{}").outcome is Outcome.success
    functions.close()


def test_reaping_follows_the_clock(tmp_path, spawner, clock):
    functions = make(tmp_path, spawner, clock, f={"keep_alive_s": 60.0}, g={"keep_alive_s": 600.0})
    functions.invoke("f", b"{}")
    clock.advance(10)
    functions.invoke("g", b"{}")
    assert functions.reap_idle(clock.monotonic()) == pytest.approx(50)  # f is due first
    clock.advance(49.9)
    functions.reap_idle(clock.monotonic())
    assert not spawner.spawned[0].closed
    clock.advance(0.1)
    # f has nothing idle, so nothing of f's is due sooner than a full keep-alive from now
    assert functions.reap_idle(clock.monotonic()) == pytest.approx(60)
    assert spawner.spawned[0].closed and not spawner.spawned[1].closed
    assert functions.pool("f").idle == 0 and functions.pool("g").idle == 1
    functions.close()
    assert spawner.spawned[1].closed


def test_force_close_kills_running_environments(tmp_path, clock):
    spawner = FakeSpawner(gate=threading.Event())
    functions = make(tmp_path, spawner, clock, f={})
    results = []
    t = threading.Thread(target=lambda: results.append(functions.invoke("f", b"{}")))
    t.start()
    wait_for(lambda: spawner.spawned and spawner.spawned[0].entered.is_set(), what="the invocation to start")
    functions.close(force=True)
    t.join(5)
    assert spawner.spawned[0].killed and results[0].outcome is Outcome.crashed
    with pytest.raises(ShuttingDown):
        functions.invoke("f", b"{}")


def test_unknown_function(tmp_path, spawner, clock):
    functions = make(tmp_path, spawner, clock, f={})
    with pytest.raises(FunctionNotFound, match="Function not found: 'nope'"):
        functions.invoke("nope", b"{}")
    functions.close()


def test_limiter_counts():
    limiter = Limiter(2, "R")
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    assert limiter.in_use == 2
    limiter.release()
    assert limiter.try_acquire()


def test_recycling_ends_warm_environments_and_running_ones_after_their_invocation(tmp_path, clock):
    gate = threading.Event()
    spawner = FakeSpawner(gate=gate)
    functions = make(tmp_path, spawner, clock, f={}, g={})
    gate.set()
    functions.invoke("f", b"{}")
    functions.invoke("g", b"{}")
    warm_f, warm_g = spawner.spawned
    gate.clear()
    running = threading.Thread(target=functions.invoke, args=("f", b"{}"))
    running.start()
    wait_for(lambda: warm_f.entered.is_set() and len(warm_f.invocations) == 2, what="f running")
    assert functions.recycle(["f"]) == 1  # the running one; it ends when its invocation does
    assert not warm_f.closed
    gate.set()
    running.join(5)
    assert warm_f.closed and not warm_g.closed
    functions.invoke("f", b"{}")
    functions.invoke("g", b"{}")
    assert len(spawner.spawned) == 3  # f started cold; g stayed warm
    assert spawner.spawned[2].invocations and len(warm_g.invocations) == 2
    functions.close()


def test_apply_replaces_changed_functions_and_leaves_the_rest_warm(tmp_path, spawner, clock):
    from dataclasses import replace

    from lambdad.manifest.diff import manifest_diff

    functions = make(tmp_path, spawner, clock, f={}, g={}, gone={})
    for name in ("f", "g", "gone"):
        functions.invoke(name, b"{}")
    old = functions.manifest
    new = replace(old, functions={
        "f": replace(old.functions["f"], memory_mb=512),  # runtime setting: new environments
        "g": old.functions["g"],
        "added": replace(old.functions["g"], name="added"),
    })
    diff = manifest_diff(old, new)
    assert (diff.functions_recycled, diff.functions_removed, diff.functions_added) == (("f",), ("gone",), ("added",))
    functions.apply(new, diff)
    f_env, g_env, gone_env = spawner.spawned
    assert f_env.closed and gone_env.closed and not g_env.closed
    with pytest.raises(FunctionNotFound):
        functions.invoke("gone", b"{}")
    functions.invoke("g", b"{}")
    functions.invoke("added", b"{}")
    assert len(g_env.invocations) == 2 and functions.pool("f").fn.memory_mb == 512
    functions.close()


def test_a_forced_stop_reaches_invocations_of_a_replaced_function(tmp_path, clock):
    from dataclasses import replace

    from lambdad.manifest.diff import manifest_diff

    spawner = FakeSpawner(gate=threading.Event())
    functions = make(tmp_path, spawner, clock, f={})
    results = []
    running = threading.Thread(target=lambda: results.append(functions.invoke("f", b"{}")))
    running.start()
    wait_for(lambda: spawner.spawned and spawner.spawned[0].entered.is_set(), what="f running")
    old = functions.manifest
    new = replace(old, functions={"f": replace(old.functions["f"], memory_mb=256)})
    functions.apply(new, manifest_diff(old, new))
    functions.kill_running()  # the old pool's invocation is still running: it must be reached
    running.join(5)
    assert spawner.spawned[0].killed and results[0].outcome is Outcome.crashed
    functions.close()
