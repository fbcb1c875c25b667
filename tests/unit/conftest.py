"""The project folder the manifest tests parse from: a handler module and a package, as users lay
them out."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "functions" / "pkg").mkdir()
    (tmp_path / "functions" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "functions" / "pkg" / "mod.py").write_text("def handler(e, c):\n    return e\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path
