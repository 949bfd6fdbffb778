"""Streams: chunk rows keyed by (name, index), a row per stream with its run, tail and done flag.

A stream is created by its first write or close and belongs to the run that
wrote it; the run need not exist (ST-2: health checks write to a fake run).
Writes append at ``tail + 1`` inside one write transaction, so indices are
contiguous and a live reader (:func:`worlds_sdk.streaming.follow_stream`, in
any process) never sees a gap. Writing to a closed stream, or to another run's
stream of the same name, is an :class:`EntityConflictError`: a reader has
already ended, or would mix two runs' data. An unknown stream reads as empty
and open, because a reader may start before the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence

from worlds_sdk.errors import EntityConflictError, ValidationError
from worlds_sdk.models import ChunkPage, StreamChunk, StreamInfo
from worlds_sdk.pagination import check_limit
from worlds_sdk.streaming import StreamSlice, follow_stream

from .database import Database
from .signals import Notifier


def _as_bytes(chunk: bytes | str, index: int) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise ValidationError(f"must be bytes or str, not {type(chunk).__name__}", field=f"chunks[{index}]")


def _check_names(name: str, run_id: str) -> None:
    for field, value in (("name", name), ("run_id", run_id)):
        if not isinstance(value, str) or not value:
            raise ValidationError("must be a non-empty string", field=field)


def _open_stream(conn: sqlite3.Connection, name: str, run_id: str) -> sqlite3.Row:
    """The stream's row, created if missing; a stream of another run is a conflict."""
    conn.execute("INSERT INTO streams (name, run_id) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, run_id))
    row: sqlite3.Row = conn.execute("SELECT * FROM streams WHERE name = ?", (name,)).fetchone()
    if row["run_id"] != run_id:
        raise EntityConflictError(f"stream {name!r} belongs to run {row['run_id']!r}, not {run_id!r}")
    return row


class LocalStreams:
    """The Streamer half of the local World, and the :class:`~worlds_sdk.streaming.ChunkSource` its readers use."""

    def __init__(self, db: Database, notifier: Notifier, poll_interval: float) -> None:
        self._db = db
        self._notifier = notifier
        self._poll_interval = poll_interval

    async def write(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None:
        """Append ``chunks`` in order, atomically."""
        _check_names(name, run_id)
        data = [_as_bytes(chunk, i) for i, chunk in enumerate(chunks)]

        def append(conn: sqlite3.Connection) -> None:
            stream = _open_stream(conn, name, run_id)
            if stream["done"]:
                raise EntityConflictError(f"stream {name!r} is closed")
            tail = stream["tail_index"]
            conn.executemany(
                "INSERT INTO chunks (name, idx, data) VALUES (?, ?, ?)",
                [(name, tail + 1 + i, chunk) for i, chunk in enumerate(data)],
            )
            conn.execute("UPDATE streams SET tail_index = ? WHERE name = ?", (tail + len(data), name))

        await self._db.write(append)
        self._notifier.notify()

    async def close(self, name: str, run_id: str) -> None:
        """Mark the stream done (creating it if nothing was written); closing twice is harmless."""
        _check_names(name, run_id)

        def close(conn: sqlite3.Connection) -> None:
            _open_stream(conn, name, run_id)
            conn.execute("UPDATE streams SET done = 1 WHERE name = ?", (name,))

        await self._db.write(close)
        self._notifier.notify()

    def follow(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        return follow_stream(self, name, start_index, poll_interval=self._poll_interval, wakeup=self._notifier.wait)

    async def read_slice(self, name: str, start_index: int, limit: int) -> StreamSlice:
        def read(conn: sqlite3.Connection) -> StreamSlice:
            stream = conn.execute("SELECT tail_index, done FROM streams WHERE name = ?", (name,)).fetchone()
            rows = conn.execute(
                "SELECT idx, data FROM chunks WHERE name = ? AND idx >= ? ORDER BY idx LIMIT ?",
                (name, start_index, limit),
            ).fetchall()
            return StreamSlice(
                chunks=[StreamChunk(index=r["idx"], data=r["data"]) for r in rows],
                tail_index=-1 if stream is None else stream["tail_index"],
                done=stream is not None and bool(stream["done"]),
            )

        return await self._db.read(read)

    async def list_by_run(self, run_id: str) -> list[str]:
        rows = await self._db.read(
            lambda c: c.execute("SELECT name FROM streams WHERE run_id = ? ORDER BY name", (run_id,)).fetchall()
        )
        return [row["name"] for row in rows]

    async def chunks(self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None) -> ChunkPage:
        """A page of chunks after ``cursor`` (the index of the last chunk of the previous page)."""
        check_limit(limit)
        after = -1
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.lstrip("-").isdigit() or int(cursor) < -1:
                raise ValidationError("is not a cursor this list returned", field="cursor")
            after = int(cursor)

        def read(conn: sqlite3.Connection) -> ChunkPage:
            stream = conn.execute("SELECT done FROM streams WHERE name = ? AND run_id = ?", (name, run_id)).fetchone()
            if stream is None:
                return ChunkPage(data=[], cursor=cursor, has_more=False, done=False)
            rows = conn.execute(
                "SELECT idx, data FROM chunks WHERE name = ? AND idx > ? ORDER BY idx LIMIT ?", (name, after, limit + 1)
            ).fetchall()
            data = [StreamChunk(index=r["idx"], data=r["data"]) for r in rows[:limit]]
            return ChunkPage(
                data=data,
                cursor=str(data[-1].index) if data else cursor,
                has_more=len(rows) > limit,
                done=bool(stream["done"]),
            )

        return await self._db.read(read)

    async def info(self, name: str, run_id: str) -> StreamInfo:
        sql = "SELECT tail_index, done FROM streams WHERE name = ? AND run_id = ?"
        row = await self._db.read(lambda c: c.execute(sql, (name, run_id)).fetchone())
        if row is None:
            return StreamInfo(tail_index=-1, done=False)
        return StreamInfo(tail_index=row["tail_index"], done=bool(row["done"]))
