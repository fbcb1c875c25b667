"""write_inside: writes land inside their root, never through a link under it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdad.safefiles import UnsafePath, relative_parts, write_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path / "bucket"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_writes_creating_missing_folders_and_replacing_a_file(root: Path):
    assert write_inside(root, "aws/lambda/async/f/rec", b"one") == root / "aws" / "lambda" / "async" / "f" / "rec"
    write_inside(root, "aws/lambda/async/f/rec", b"two")
    assert (root / "aws/lambda/async/f/rec").read_bytes() == b"two"
    assert files_under(root) == ["aws/lambda/async/f/rec"]  # no temporary file left behind


def test_a_missing_root_is_created_and_a_linked_root_is_followed(tmp_path: Path):
    write_inside(tmp_path / "new" / "folder", "x.json", b"{}")
    assert (tmp_path / "new" / "folder" / "x.json").read_bytes() == b"{}"
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")  # a bucket the user pointed at a linked folder
    write_inside(tmp_path / "linked", "a/b", b"x")
    assert (tmp_path / "real" / "a" / "b").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("setup", "name"),
    [
        pytest.param(lambda root, out: (root / "aws").symlink_to(out), "aws/lambda/rec", id="linked-folder"),
        pytest.param(lambda root, out: ((root / "aws").mkdir(), (root / "aws" / "lambda").symlink_to(out)),
                     "aws/lambda/rec", id="linked-folder-deeper"),
        pytest.param(lambda root, out: (root / "aws").symlink_to(out / "not-there"), "aws/rec", id="dangling-link"),
        pytest.param(lambda root, out: (root / "rec").symlink_to(out / "rec"), "rec", id="linked-final-file"),
        pytest.param(lambda root, out: ((out / "rec").write_bytes(b"keep"), (root / "rec").symlink_to(out / "rec")),
                     "rec", id="linked-existing-file"),
        pytest.param(lambda root, out: (root / "up").symlink_to(".."), "up/outside/rec", id="link-to-parent"),
    ],
)
def test_links_under_the_root_are_refused(root: Path, setup, name: str):
    outside = root.parent / "outside"
    setup(root, outside)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        write_inside(root, name, b"secret")
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    assert not (outside / "not-there").exists()
    assert not [p for p in root.rglob("*.tmp")]


@pytest.mark.parametrize(
    "name", ["../outside/rec", "a/../../outside/rec", "/tmp/rec", "", "a//b", "./a", "a/.", "a\0b", "a/"]
)
def test_names_that_could_leave_the_root_are_refused(root: Path, name: str):
    with pytest.raises(UnsafePath):
        write_inside(root, name, b"x")
    assert files_under(root.parent) == []


def test_a_root_with_a_nul_byte_is_refused_not_a_value_error(tmp_path: Path):
    with pytest.raises(UnsafePath, match="NUL"):
        write_inside(tmp_path / "a\0b", "x", b"x")


def test_relative_parts():
    assert relative_parts("aws/lambda/x") == ["aws", "lambda", "x"]
    assert relative_parts("dead-letters/f/2024-01-01T00.00.00.000Z-id.json")[-1].endswith(".json")


def test_a_file_where_a_folder_should_be_is_an_ordinary_error(root: Path):
    """Not a link: a plain OSError, which the outbox retries (the user may move the file away)."""
    (root / "aws").write_bytes(b"a file")
    with pytest.raises(OSError) as e:
        write_inside(root, "aws/rec", b"x")
    assert not isinstance(e.value, UnsafePath)


def test_a_failed_write_leaves_no_temporary_file(root: Path, monkeypatch: pytest.MonkeyPatch):
    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        write_inside(root, "a/rec", b"x")
    monkeypatch.undo()
    assert files_under(root) == []
