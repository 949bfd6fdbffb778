"""Fixtures for the local World's own tests: real temporary directories, short timings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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


async def poll_until(check: Callable[[], Awaitable[T]], *, timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """:func:`poll_until`, as a fixture: ``await eventually(check, what=...)``."""
    return poll_until
