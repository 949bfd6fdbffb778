"""Holding the local World's database thread, so the writes queued meanwhile form one batch after it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from reference_worlds.local.database import Database


@asynccontextmanager
async def thread_held(db: Database, statements: list[str] | None = None) -> AsyncIterator[None]:
    """Hold the database thread in a first write; the writes queued inside the block form one batch after it.

    ``statements``, if given, collects the SQL the thread runs from then on.
    """
    entered, release = threading.Event(), threading.Event()

    def blocked(conn: sqlite3.Connection) -> None:
        if statements is not None:
            conn.set_trace_callback(statements.append)
        entered.set()
        release.wait(timeout=30)

    first = asyncio.ensure_future(db.write(blocked))
    assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, 30)
    try:
        yield
        await asyncio.sleep(0)  # the writes started in the block reach the queue while the thread is held
    finally:
        release.set()
        await first
