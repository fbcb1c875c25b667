from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURE_FUNCTIONS, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    """A copy of the fixture handlers, so tests may edit them."""
    target = tmp_path / "functions"
    shutil.copytree(FIXTURE_FUNCTIONS, target)
    return target
