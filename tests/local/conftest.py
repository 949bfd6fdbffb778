"""Fixtures for the local World's own tests: real temporary directories, short timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """A fresh world directory with leases, polls and back-offs short enough for tests."""
    return {
        "path": str(tmp_path / "world"),
        "lease_seconds": 1.0,
        "poll_interval": 0.02,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "shutdown_grace": 1.0,
    }
