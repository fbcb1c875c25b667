"""Destination records and dead letters stay inside their bucket or folder, whatever links are in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdad.manifest.model import Target, TargetKind
from lambdad.outcomes.outbox import MAX_DELIVERY_WAIT_S
from lambdad.store import outbox
from tests.component.test_dispatcher import World, failing


@pytest.fixture
def world(tmp_path: Path):
    worlds: list[World] = []

    def factory(**options) -> World:
        worlds.append(World(tmp_path, failing, maximum_retry_attempts=0, **options))
        return worlds[-1]

    yield factory
    for w in worlds:
        w.close()


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def pending(w: World) -> list[outbox.PendingFile]:
    with w.store.reading() as tx:
        return outbox.due(tx, float("inf"))


def test_a_link_in_a_bucket_does_not_carry_records_out_of_it(world, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    bucket = tmp_path / "buckets" / "failed"
    bucket.mkdir(parents=True)
    (bucket / "aws").symlink_to(outside)  # records go to aws/lambda/async/...: through the link, before
    w = world(on_failure=Target(TargetKind.bucket, "failed"),
              dead_letter=Target(TargetKind.bucket, "failed"))
    w.dispatcher.invocations.enqueue("f", b'{"n": 1}')
    w.step()  # fails for good: a dead letter under dead-letters/, a record under aws/
    w.step()  # writes what it may
    assert everything_under(outside) == []
    assert everything_under(bucket)[0] == "aws" and (bucket / "aws").is_symlink()
    assert [p for p in everything_under(bucket) if p.startswith("dead-letters/f/")], "the dead letter is written"
    # The record is kept (nothing is lost), said once, and not retried as if the disk were full.
    (kept,) = pending(w)
    assert kept.name.startswith("aws/lambda/async/f/") and "is a symbolic link" in (kept.last_error or "")
    refusals = [m for m in w.warnings if "not written" in m]
    assert len(refusals) == 1 and str(bucket / "aws") in refusals[0] and "is a symbolic link" in refusals[0]
    for _ in range(3):
        w.advance_and_step(MAX_DELIVERY_WAIT_S)
    assert everything_under(outside) == [] and len([m for m in w.warnings if "not written" in m]) == 1
    # The link removed, the record is written where it belongs.
    (bucket / "aws").unlink()
    w.advance_and_step(MAX_DELIVERY_WAIT_S)
    assert pending(w) == []
    assert [p for p in everything_under(bucket) if p.startswith("aws/lambda/async/f/") and p.count("/") == 7]


def test_a_linked_folder_target_is_followed_but_not_links_inside_it(world, tmp_path: Path):
    """The folder a user configured may itself be a link; a link inside it may not redirect a write."""
    real = tmp_path / "real-dlq"
    real.mkdir()
    (tmp_path / "dlq").symlink_to(real)
    w = world(dead_letter=Target(TargetKind.folder, str(tmp_path / "dlq")))
    w.dispatcher.invocations.enqueue("f", b"{}")
    w.step()
    w.step()
    (letter,) = real.iterdir()
    assert letter.name.endswith(".json") and not letter.is_symlink()
    assert pending(w) == [] and w.warnings == []
