"""Streams in PostgreSQL: chunk rows, live readers woken by NOTIFY and kept correct by polling.

A stream is keyed by its name (``read_from_stream`` has no run id); the run id is
recorded on first write and used by ``list_streams_by_run_id``. Writers lock the
stream row, so chunk indexes are gapless and in write order across processes.
The live-read loop is :func:`worlds_sdk.streaming.follow_stream`, shared with the
local World; this module supplies one-snapshot slices and the wake-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from worlds_sdk.errors import ValidationError
from worlds_sdk.models import ChunkPage, StreamChunk, StreamInfo
from worlds_sdk.pagination import check_limit
from worlds_sdk.streaming import StreamSlice, follow_stream

from .database import Database
from .listener import Signals
from .queries import query


def _encode(chunk: bytes | str) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise ValidationError(f"a chunk must be bytes or str, not {type(chunk).__name__}", field="chunk")


class PostgresStreams:
    """The Streamer surface of the Postgres World (and :class:`~worlds_sdk.protocols.BatchStreamer`)."""

    def __init__(
        self, db: Database, signals: Signals, listen: Callable[[], Awaitable[None]], *, poll_interval: float
    ) -> None:
        self._db = db
        self._signals = signals
        self._listen = listen
        self._poll_interval = poll_interval

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        await self.write_to_stream_many(name, run_id, [chunk])

    async def write_to_stream_many(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None:
        data = [_encode(c) for c in chunks]
        await self._db.fetchone(query("write_stream"), {"name": name, "run_id": run_id, "chunks": data})

    async def close_stream(self, name: str, run_id: str) -> None:
        await self._db.fetchone(query("close_stream"), {"name": name, "run_id": run_id})

    async def read_slice(self, name: str, start_index: int, limit: int) -> StreamSlice:
        """:class:`~worlds_sdk.streaming.ChunkSource`: chunks, tail and done from one statement."""
        rows = await self._db.fetchall(query("stream_slice"), {"name": name, "start": start_index, "limit": limit})
        if not rows:
            return StreamSlice(chunks=(), tail_index=-1, done=False)
        chunks = [StreamChunk(index=r["idx"], data=bytes(r["data"])) for r in rows if r["idx"] is not None]
        return StreamSlice(chunks=chunks, tail_index=rows[0]["tail_index"], done=rows[0]["done"])

    async def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        async def wakeup(timeout: float) -> bool:
            return await self._signals.wait(timeout, name)

        await self._listen()
        with self._signals.interest(name):
            async for chunk in follow_stream(self, name, start_index, poll_interval=self._poll_interval, wakeup=wakeup):
                yield chunk

    async def list_streams_by_run_id(self, run_id: str) -> Sequence[str]:
        return [r["name"] for r in await self._db.fetchall(query("streams_of_run"), {"run_id": run_id})]

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        """A page of chunks; the cursor is the next index to read (opaque to callers)."""
        check_limit(limit)
        if cursor is not None and (not isinstance(cursor, str) or not cursor.isdigit()):
            raise ValidationError("is not a cursor this stream returned", field="cursor")
        start = int(cursor) if cursor is not None else 0
        page = await self.read_slice(name, start, limit + 1)
        chunks = list(page.chunks[:limit])
        next_index = chunks[-1].index + 1 if chunks else start
        return ChunkPage(data=chunks, cursor=str(next_index), has_more=len(page.chunks) > limit, done=page.done)

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        page = await self.read_slice(name, 0, 0)
        return StreamInfo(tail_index=page.tail_index, done=page.done)
