"""The bucket watcher's rounds on a fake clock, without inotify: what `step(now)` applies, and the
wait it returns until the next hint is due (the loop sleeps that long unless a new hint wakes it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdad.triggers.buckets.inotify import Hint
from lambdad.triggers.buckets.watch import BATCH, DELETE_SETTLE_S, IDLE_WAIT_S, BucketWatcher
from tests.component.test_bucket_sync import World


@pytest.fixture
def w(tmp_path: Path):
    world = World(tmp_path)
    world.watcher = BucketWatcher([world.sync], world.store, clock=world.clock)
    yield world
    world.store.close()


def test_a_round_applies_what_was_reported_then_waits_for_the_next_hint(w):
    w.watcher.report(w.sync, Hint("written", w.write("a.txt")))
    assert w.watcher.step(w.clock.time()) == IDLE_WAIT_S
    assert w.new_events() == [("on_created", "ObjectCreated:Put", "a.txt")]
    assert w.watcher.idle.is_set()


def test_a_delete_waits_out_its_settle_then_is_announced(w):
    path = w.write("a.txt")
    w.watcher.work([(w.sync, Hint("written", path))])
    w.new_events()
    os.unlink(path)
    w.watcher.report(w.sync, Hint("deleted", path))
    assert w.watcher.step(w.clock.time()) == pytest.approx(DELETE_SETTLE_S)
    assert not w.watcher.idle.is_set() and w.new_events() == []
    w.clock.advance(DELETE_SETTLE_S)
    assert w.watcher.step(w.clock.time()) == 0.0  # (the round queued the hint that came due: next round at once)
    assert w.watcher.step(w.clock.time()) == IDLE_WAIT_S
    assert w.new_events() == [("on_removed", "ObjectRemoved:Delete", "a.txt")]


def test_a_burst_is_applied_a_batch_per_round_without_waiting_between(w):
    for i in range(BATCH + 1):
        w.watcher.report(w.sync, Hint("written", w.write(f"f{i:04d}.txt")))
    assert w.watcher.step(w.clock.time()) == 0.0
    assert len(w.new_events()) == BATCH
    assert w.watcher.step(w.clock.time()) == IDLE_WAIT_S
    assert len(w.new_events()) == 1
