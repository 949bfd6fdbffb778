"""LISTEN/NOTIFY as a wake-up hint, on one dedicated connection that reconnects.

The SQL functions ``NOTIFY`` at commit when a message is enqueued
(``<schema>.queue``) or a stream changes (``<schema>.streams``, payload: the
stream name). Waiters -- the queue consumer, live stream readers -- wait for a
:class:`Signals` key *with a timeout* and poll on every timeout, so a lost
notification, a dead connection or a server restart only delays them by one
poll interval: correctness never depends on this module. After a reconnect every
waiter is woken, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql

from worlds_sdk.errors import WorkflowWorldError

from .nul_escape import unescape_text

logger = logging.getLogger(__name__)

ALL = ""
"""The key that wakes every waiter of a :class:`Signals`."""


class Signals:
    """Waiters keyed by a string; :meth:`fire` wakes the waiters of one key (or all, with :data:`ALL`)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def wait(self, timeout: float, key: str = ALL) -> bool:
        """True if woken before ``timeout`` seconds passed."""
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def fire(self, key: str = ALL) -> None:
        if key == ALL:
            woken = list(self._events.values())
            self._events.clear()
        else:
            woken = [e for e in (self._events.pop(key, None), self._events.pop(ALL, None)) if e is not None]
        for event in woken:
            event.set()


class Listener:
    """One LISTEN connection for a World; channel name -> :class:`Signals` keyed by the payload."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[object]]],
        channels: dict[str, Signals],
        *,
        max_backoff: float = 2.0,
    ) -> None:
        self._connect = connect
        self._channels = channels
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    def start(self) -> None:
        """Begin listening in the running loop; a no-op when already listening."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="worlds-postgres-listener")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                conn = await self._connect()
            except (psycopg.Error, WorkflowWorldError, OSError) as exc:
                logger.warning("LISTEN connection failed (%s); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                continue
            try:
                for channel in self._channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                self.connected.set()
                backoff = 0.05
                self._wake_everyone()  # whatever was notified while we were away is lost
                async for note in conn.notifies():
                    signals = self._channels.get(note.channel)
                    if signals is not None:
                        signals.fire(unescape_text(note.payload) or ALL)
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); reconnecting", exc)
                self.reconnects += 1
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close()
            self._wake_everyone()

    def _wake_everyone(self) -> None:
        for signals in self._channels.values():
            signals.fire(ALL)
