"""Helpers shared by the project's own tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import conformance
import reference_worlds
import worlds_sdk

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("WORLDS_TEST_INSTALLED"):
    # tox installs the built wheel: a test that imported the checkout's copy instead
    # would pass on files the wheel may not carry.
    for package in (worlds_sdk, conformance, reference_worlds):
        location = Path(package.__file__ or "").resolve()
        if location.is_relative_to(ROOT) and ".tox" not in location.parts:
            raise pytest.UsageError(f"{package.__name__} was imported from the checkout ({location}), not the wheel")


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
