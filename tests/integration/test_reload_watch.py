"""What counts as an edit: the manifest saved in any way editors save, code folders without their
caches, virtual environments, editor litter, or lambdad's own state inside them; all debounced."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdad.daemon.watch import DEBOUNCE_S, ReloadWatch
from tests.helpers import FakeClock, wait_for


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[ReloadWatch, Path, FakeClock]]:
    (tmp_path / "lambdad.yaml").write_text("version: 1\n")
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "__pycache__").mkdir()
    (code / ".venv" / "lib").mkdir(parents=True)
    (code / ".lambdad").mkdir()
    watch = ReloadWatch(tmp_path / "lambdad.yaml", clock=clock)
    watch.start([code], not_code=[code / ".lambdad"])
    yield watch, code, clock
    watch.stop()


def noticed(watch: ReloadWatch, clock: FakeClock) -> tuple[bool, list[str]]:
    """Wait until the watch heard of a change, then return what is due once it settled."""
    wait_for(lambda: watch.next_check(clock.monotonic()) is not None, timeout=5, what="the change to be noticed")
    assert watch.due(clock.monotonic() + DEBOUNCE_S / 2) == (False, {})  # not settled yet
    manifest, folders = watch.due(clock.monotonic() + DEBOUNCE_S)
    return manifest, sorted(folders)


def test_a_manifest_saved_by_rename_counts_once_settled(world, tmp_path: Path):
    watch, _, clock = world
    (tmp_path / ".lambdad.yaml.swp").write_text("version: 1\nregion: eu-west-1\n")
    os.replace(tmp_path / ".lambdad.yaml.swp", tmp_path / "lambdad.yaml")
    assert noticed(watch, clock) == (True, [])
    assert watch.due(clock.monotonic() + 10) == (False, {})  # reported once


def test_a_manifest_written_in_place_counts(world, tmp_path: Path):
    watch, _, clock = world
    (tmp_path / "lambdad.yaml").write_text("version: 1\n# edited\n")
    assert noticed(watch, clock) == (True, [])


@pytest.mark.parametrize("path", ["app.py", "pkg/util.py", "new/mod.py", "data.json"])
def test_code_changes_count(world, path: str):
    watch, code, clock = world
    target = code / path
    target.parent.mkdir(exist_ok=True)
    target.write_text("x = 1\n")
    seen: dict[str, set[str]] = {}

    def collect() -> bool:  # (a new folder's own event may come first, in a round of its own)
        for folder, paths in watch.due(clock.monotonic() + DEBOUNCE_S)[1].items():
            seen.setdefault(folder, set()).update(paths)
        # the file, or the new folder it was written into before the folder's watch existed
        return bool({str(target), str(target.parent)} & seen.get(str(code), set()) - {str(code)})

    wait_for(collect, timeout=5, what="the change to be noticed, with where")  # (its .pyc goes)
    assert list(seen) == [str(code)]


@pytest.mark.parametrize("path", ["__pycache__/app.cpython-311.pyc", ".venv/lib/site.py", ".lambdad/events.db",
                                  ".app.py.swp", "app.py~", "stray.pyc"])
def test_caches_environments_state_and_editor_litter_do_not(world, tmp_path: Path, path: str):
    watch, code, clock = world
    (code / path).write_text("x")
    (code / path).write_text("y")
    (code / path).unlink()
    # One inotify queue, in order: once the manifest's change is seen, the ones above were too.
    (tmp_path / "lambdad.yaml").write_text("version: 1\n# edited\n")
    assert noticed(watch, clock) == (True, [])
