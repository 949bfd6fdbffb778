"""Helpers shared by the project's own tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


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
