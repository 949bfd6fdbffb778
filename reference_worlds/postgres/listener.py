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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from worlds_sdk.errors import WorkflowWorldError

from .nul_escape import unescape_text

logger = logging.getLogger(__name__)

ALL = ""
"""The key that wakes every waiter of a :class:`Signals`."""


class Signals:
    """Wake-ups keyed by a string (a stream name; :data:`ALL` for "anything").

    A waiter reads, finds nothing new, then waits. A notification that arrives
    between its read and its wait must not be lost, or the waiter sleeps a whole
    poll interval (a benchmark showed exactly that at p99). So :meth:`fire` also
    leaves a *pending* mark for every key someone is interested in, and the next
    :meth:`wait` on that key returns at once. Interest is declared with
    :meth:`interest` (or ``keep`` for keys that always matter), so marks are never
    kept for streams nobody follows.
    """

    def __init__(self, *, keep: Iterable[str] = ()) -> None:
        self._interest: Counter[str] = Counter({key: 1 for key in keep})
        self._pending: set[str] = set()
        self._events: dict[str, asyncio.Event] = {}

    @contextmanager
    def interest(self, key: str) -> Iterator[None]:
        self._interest[key] += 1
        try:
            yield
        finally:
            self._interest[key] -= 1
            if self._interest[key] <= 0:
                del self._interest[key]
                self._pending.discard(key)

    async def wait(self, timeout: float, key: str = ALL) -> bool:
        """True if woken (or a wake-up was pending) before ``timeout`` seconds passed."""
        if key in self._pending:
            self._pending.discard(key)
            return True
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        self._pending.discard(key)  # this wake-up is the one that was pending
        return True

    def fire(self, key: str = ALL) -> None:
        """Wake the waiters of ``key`` and of :data:`ALL` (of every key, when ``key`` is :data:`ALL`)."""
        keys = set(self._interest) | set(self._events) if key == ALL else {key, ALL}
        for k in keys:
            if k in self._interest:
                self._pending.add(k)
            event = self._events.pop(k, None)
            if event is not None:
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
            except Exception as exc:  # whatever broke the connection, the answer is to reconnect
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
