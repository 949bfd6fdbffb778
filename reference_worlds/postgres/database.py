"""Connections to one World's schema: a pool opened lazily, in the event loop that first needs it.

A World object is built synchronously by its factory and may be used without
``start()`` (a client that only reads or appends events), so the pool opens on
first use. Opening checks the server with one direct connection first -- an
unreachable server or a wrong password is one clear
:class:`~worlds_sdk.errors.WorldUnavailableError`, not a pool timeout -- and
applies pending migrations (or, with ``auto_migrate`` off, only checks that the
schema suits this code).
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory, DictRow, dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from worlds_sdk.errors import WorkflowWorldError, WorldUnavailableError

from .config import PostgresConfig
from .errors import translated
from .migrations import migrate, verify
from .nul_escape import escape_params, unescape_value

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[DictRow]
T = TypeVar("T")


def application_name(schema: str) -> str:
    """Connections say which World they serve, so an operator (or a test sandbox) can find them."""
    return f"worlds:{schema}"


class Database:
    """The pool of one World; every call goes through the error boundary (:mod:`.errors`)."""

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    def connection_kwargs(self) -> dict[str, Any]:
        """Per-connection settings: the World's schema first on the search_path, times in UTC."""
        return {
            "autocommit": True,
            "connect_timeout": max(1, round(self.config.connect_timeout)),
            "options": f"-c search_path={self.config.schema} -c TimeZone=UTC",
            "application_name": application_name(self.config.schema),
        }

    async def connect(self) -> Connection:
        """A connection outside the pool (the LISTEN connection, the first check)."""
        with translated():
            conn: Connection = await psycopg.AsyncConnection.connect(
                self.config.conninfo(), row_factory=dict_row, **self.connection_kwargs()
            )
        return conn

    async def pool(self) -> AsyncConnectionPool[Connection]:
        if self._closed:
            raise WorldUnavailableError("this Postgres World is closed")
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await self._open()
        return self._pool

    async def _open(self) -> AsyncConnectionPool[Connection]:
        conninfo = self.config.conninfo()
        first = await self.connect()  # fails fast and clearly on a bad URL or password
        try:
            await asyncio.to_thread(migrate if self.config.auto_migrate else verify, conninfo, self.config.schema)
        finally:
            await first.close()
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            conninfo,
            kwargs={**self.connection_kwargs(), "row_factory": dict_row},
            min_size=1,
            max_size=self.config.pool_size,
            open=False,
            timeout=self.config.connect_timeout,
            name=f"worlds-{self.config.schema}",
        )
        with translated():
            await pool.open(wait=True, timeout=self.config.connect_timeout)
        return pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        pool = await self.pool()
        with translated():
            conn = await self._live_connection(pool)
            try:
                yield conn
            finally:
                await pool.putconn(conn)

    async def _live_connection(self, pool: AsyncConnectionPool[Connection]) -> Connection:
        """A pooled connection the server has not closed (after ``pg_terminate_backend`` or a restart).

        An idle connection has nothing to read, so a readable socket means the server
        hung up: such a connection is dropped and the next one tried at once. This
        costs no round trip, unlike the pool's ``check`` (which also backs off for a
        second or more per dead connection, stalling recovery).
        """
        for _ in range(self.config.pool_size):
            conn = await pool.getconn()
            if not select.select([conn.pgconn.socket], [], [], 0)[0]:
                return conn
            await conn.close()
            await pool.putconn(conn)  # the pool discards it and opens a replacement
        return await pool.getconn()

    async def fetchone(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        rows = await self.fetchall(query, params)
        return rows[0] if rows else None

    async def fetch_values(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> tuple[Any, ...] | None:
        """The first row as a tuple, in the query's column order: for the hot path, where a dict per row costs."""
        rows = await self._run(query, params, tuple_row)
        return rows[0] if rows else None

    async def fetchall(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        return await self._run(query, params, dict_row)

    async def _run(
        self, query: str, params: Sequence[Any] | Mapping[str, Any], row_factory: AsyncRowFactory[T]
    ) -> list[T]:
        """Run one statement (NUL-escaping parameters and results, see :mod:`.nul_escape`).

        A statement whose connection the server ended (``AdminShutdown``) may have
        committed: the server can end the backend after COMMIT but before the reply
        reaches us. Running it again could append an event or a chunk a second time, or
        answer 409 for a write that succeeded. So it is run again only inside a READ ONLY
        transaction: a read gets its answer from a fresh connection (the common case, a
        pooled connection that :meth:`_live_connection` saw alive a moment before the
        server ended it), while a write is refused by the server itself, and the caller
        gets the original :class:`~worlds_sdk.errors.WorldUnavailableError` -- the outcome
        is unknown, and retrying is the caller's choice (at-least-once).
        """
        try:
            return await self._execute(query, params, row_factory)
        except WorldUnavailableError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.AdminShutdown):
                raise
            unknown = exc
        try:
            return await self._execute(query, params, row_factory, read_only=True)
        except WorkflowWorldError:
            raise unknown from unknown.__cause__  # a write (or a second failure): its outcome is unknown

    async def _execute(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any],
        row_factory: AsyncRowFactory[T],
        *,
        read_only: bool = False,
    ) -> list[T]:
        async with self.connection() as conn, conn.transaction() if read_only else nullcontext():
            if read_only:
                await conn.execute(b"SET TRANSACTION READ ONLY")
            cur = conn.cursor(row_factory=row_factory)
            await cur.execute(query.encode(), escape_params(params))
            return [unescape_value(row) for row in await cur.fetchall()]

    async def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
