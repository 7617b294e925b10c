"""Shared fixtures: a fresh workspace (``home``) and the real data set (``real_data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertlab.store import Home

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """An empty workspace in a temporary directory."""
    return Home(tmp_path / "home")


@pytest.fixture
def real_data() -> Path:
    """``../shared/data/real`` beside the repository; the test is skipped when it is absent."""
    if not (REAL_DATA / "alerts.csv").exists():
        pytest.skip(f"real data not found at {REAL_DATA}: clone alertlab next to shared/ to run these tests")
    return REAL_DATA
