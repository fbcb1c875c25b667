"""The one background-loop shape: rounds at the wait `step` returns, woken early, surviving a
failed round (reported once to Health, recovered after the next good round)."""

from __future__ import annotations

import threading

from lambdad.health import Health
from lambdad.loops import Loop
from tests.helpers import FakeClock, wait_for


def test_a_round_that_raises_is_reported_and_the_loop_goes_on() -> None:
    said: list[str] = []
    health = Health(say=said.append)
    rounds: list[float] = []

    def step(now: float) -> float:
        rounds.append(now)
        if len(rounds) == 1:
            raise OSError(28, "No space left on device")
        return 60.0

    clock = FakeClock()
    loop = Loop("test", step, clock, health, component="dispatcher")
    assert loop.run_once() == 1.0  # the first backoff wait
    assert health.is_failing("dispatcher")
    assert loop.run_once() == 60.0
    assert not health.is_failing("dispatcher")
    assert rounds == [clock.time(), clock.time()]
    assert "failed: No space left on device" in said[0] and "works again" in said[1]


def test_wake_runs_the_next_round_before_its_wait_and_stop_ends_the_thread() -> None:
    ran = threading.Semaphore(0)
    loop = Loop("test", lambda now: (ran.release(), 3600.0)[1], FakeClock(), Health(say=lambda s: None))
    loop.start()
    assert ran.acquire(timeout=5)  # the first round runs at once
    loop.wake()
    assert ran.acquire(timeout=5)  # woken long before the hour it asked for
    loop.stop()
    wait_for(lambda: not loop.running, 5, what="the loop's thread to end")
