"""An in-process wake-up hint: "something was written, look again".

Readers and consumers in *this* process react at once to writes made through
this World instance; writes by other processes are found by polling. The hint
may be spurious or missed -- callers poll on every timeout regardless.
"""

from __future__ import annotations

import asyncio
import contextlib


class Notifier:
    """Wakes every coroutine waiting in :meth:`wait`; safe to use from several event loops."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in list(self._waiters):
            with contextlib.suppress(RuntimeError):  # its loop was closed under it: nobody to wake
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    async def wait(self, timeout: float) -> None:
        """Return on the next :meth:`notify` or after ``timeout`` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            self._waiters.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
