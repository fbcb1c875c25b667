"""What GetFunction reports of a handler's file, read again only when the file changes."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from lambdad.runtime.code import CodeFile, code_file


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_size_digest_and_time_of_the_file(tmp_path: Path):
    path = tmp_path / "app.py"
    path.write_bytes(b"def handler(e, c):\n    return e\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    assert code_file(path) == CodeFile(32, sha256(path.read_bytes()), 1_700_000_000)


def test_no_file_is_no_code():
    assert code_file(None) == CodeFile(0, sha256(b""), 0)


def test_the_file_is_read_again_only_once_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "app.py"
    path.write_bytes(b"one")
    reads: list[Path] = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or read_bytes(self))
    first = code_file(path)
    assert code_file(path) == first and len(reads) == 1
    path.write_bytes(b"two")  # same size: the saved time tells
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert code_file(path).sha256 == sha256(b"two") and len(reads) == 2
