"""Streams in PostgreSQL: gapless order across writers, closed streams, live readers without NOTIFY."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reference_worlds.postgres import PostgresWorld
from worlds_sdk.errors import EntityConflictError

pytestmark = pytest.mark.postgres

RUN = "wrun_01ARZ3NDEKTSV4RRFFQ69G5FAV"


def test_concurrent_writers_get_gapless_indexes_in_their_own_order(pg_config: dict[str, Any]) -> None:
    async def body() -> None:
        worlds = [PostgresWorld(pg_config) for _ in range(4)]
        try:

            async def write(i: int, world: PostgresWorld) -> None:
                for n in range(10):
                    await world.write_to_stream_many("s", RUN, [f"{i}:{n}:a", f"{i}:{n}:b"])

            await asyncio.gather(*(write(i, w) for i, w in enumerate(worlds)))
            page = await worlds[0].get_stream_chunks("s", RUN, limit=1000)
            assert [c.index for c in page.data] == list(range(80))
            chunks = [c.data.decode() for c in page.data]
            for i in range(4):
                mine = [c for c in chunks if c.startswith(f"{i}:")]
                assert mine == [f"{i}:{n}:{x}" for n in range(10) for x in "ab"]
            pairs = list(zip(chunks[::2], chunks[1::2], strict=True))
            assert all(a[:-1] == b[:-1] for a, b in pairs), "a batch was interleaved with another"
        finally:
            await asyncio.gather(*(w.close() for w in worlds))

    asyncio.run(body())


def test_writing_to_a_closed_stream_is_a_conflict(pg_config: dict[str, Any]) -> None:
    async def body() -> None:
        world = PostgresWorld(pg_config)
        try:
            await world.write_to_stream("s", RUN, b"x")
            await world.close_stream("s", RUN)
            with pytest.raises(EntityConflictError):
                await world.write_to_stream("s", RUN, b"late")
            assert (await world.get_stream_info("s", RUN)).tail_index == 0
        finally:
            await world.close()

    asyncio.run(body())


def test_a_live_reader_outlives_its_listen_connection(
    pg_config: dict[str, Any], eventually: Any, connections: Any
) -> None:
    async def body() -> None:
        writer, reader_world = PostgresWorld(pg_config), PostgresWorld(pg_config)
        try:
            got: list[bytes] = []

            async def read() -> None:
                async for chunk in reader_world.read_from_stream("live", 0):
                    got.append(chunk)

            reader = asyncio.create_task(read())
            await writer.write_to_stream("live", RUN, b"before")
            await eventually(lambda: asyncio.to_thread(connections.listening), what="the reader listening")
            await asyncio.to_thread(connections.terminate)
            for i in range(3):
                await writer.write_to_stream("live", RUN, bytes([i]))
            await writer.close_stream("live", RUN)
            await asyncio.wait_for(reader, 30)
            assert got == [b"before", b"\x00", b"\x01", b"\x02"]
        finally:
            await writer.close()
            await reader_world.close()

    asyncio.run(body())
