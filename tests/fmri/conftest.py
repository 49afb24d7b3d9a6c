"""Shared fixtures for the fmri step tests: the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared real data; skips the test when it is absent."""
    root = Path(os.environ.get("NEUROLEARN_TEST_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real test data not found at {root}")
    return root
