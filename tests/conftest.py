from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambdad.validation import register_feature_checks
from tests.helpers import FIXTURE_FUNCTIONS, FakeClock

#: Each tier is its folder, so `pytest -m unit` (or `-m "not integration"`) runs the fast ones alone.
TIERS = ("unit", "component", "integration")


def pytest_configure(config: pytest.Config) -> None:
    """Manifests loaded in-process are checked as the CLI and the daemon check them: with every feature's checks."""
    register_feature_checks()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = next((t for t in TIERS if f"tests/{t}/" in item.nodeid), None)
        if tier is not None:
            item.add_marker(tier)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    """A copy of the fixture handlers, so tests may edit them."""
    target = tmp_path / "functions"
    shutil.copytree(FIXTURE_FUNCTIONS, target)
    return target
