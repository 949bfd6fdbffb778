"""Signals: a wake-up fired between a waiter's read and its wait is not lost."""

from __future__ import annotations

import asyncio

import pytest

from reference_worlds.postgres.listener import ALL, Signals

pytestmark = pytest.mark.postgres


def test_a_wakeup_fired_before_the_wait_is_kept_for_an_interested_key() -> None:
    async def body() -> None:
        signals = Signals()
        with signals.interest("s"):
            signals.fire("s")  # arrives while the reader is still reading
            assert await signals.wait(10.0, "s")  # returns at once, not after 10 s
            assert not await signals.wait(0.01, "s")  # consumed

    asyncio.run(body())


def test_no_marks_are_kept_for_keys_nobody_follows() -> None:
    async def body() -> None:
        signals = Signals()
        for i in range(1000):
            signals.fire(f"stream-{i}")
        assert not await signals.wait(0.01, "stream-1")
        with signals.interest("stream-1"):
            pass
        signals.fire("stream-1")
        assert not await signals.wait(0.01, "stream-1")

    asyncio.run(body())


def test_all_wakes_every_waiter_and_kept_keys_always_get_marks() -> None:
    async def body() -> None:
        signals = Signals(keep=[ALL])
        waiters = [asyncio.create_task(signals.wait(10.0, key)) for key in ("a", "b")]
        await asyncio.sleep(0)
        signals.fire(ALL)
        assert await asyncio.gather(*waiters) == [True, True]
        assert await signals.wait(10.0)  # the consumer (ALL) had a mark waiting

    asyncio.run(body())
