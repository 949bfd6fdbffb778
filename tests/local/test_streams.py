"""Streams in the local World: encoding, ownership, closing, paging, and the live reader."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reference_worlds.local import LocalWorld
from worlds_sdk.errors import EntityConflictError, ValidationError
from worlds_sdk.models import StreamInfo


def with_world(config: dict[str, Any], body: Callable[[LocalWorld], Awaitable[None]]) -> None:
    async def main() -> None:
        world = LocalWorld(config)
        try:
            await body(world)
        finally:
            await world.close()

    asyncio.run(main())


def test_str_chunks_are_utf8_and_bytes_stay_exact(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        await world.write_to_stream("s", "wrun_fake", "héllo ✓")
        await world.write_to_stream_many("s", "wrun_fake", [b"\x00\xff\xfe", b"", b"end"])
        await world.close_stream("s", "wrun_fake")
        chunks = [c async for c in world.read_from_stream("s")]
        assert chunks == ["héllo ✓".encode(), b"\x00\xff\xfe", b"", b"end"]

    with_world(config, body)


def test_writing_to_a_closed_stream_or_another_runs_stream_is_a_conflict(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        await world.write_to_stream("s", "wrun_a", b"1")
        with pytest.raises(EntityConflictError, match="belongs to run"):
            await world.write_to_stream("s", "wrun_b", b"2")
        await world.close_stream("s", "wrun_a")
        await world.close_stream("s", "wrun_a")  # closing twice is harmless
        with pytest.raises(EntityConflictError, match="closed"):
            await world.write_to_stream("s", "wrun_a", b"3")
        assert await world.get_stream_info("s", "wrun_a") == StreamInfo(tail_index=0, done=True)

    with_world(config, body)


def test_chunks_page_by_cursor_and_an_unknown_stream_is_empty(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        assert await world.get_stream_info("s", "wrun_a") == StreamInfo(tail_index=-1, done=False)
        empty = await world.get_stream_chunks("s", "wrun_a")
        assert (empty.data, empty.has_more, empty.done) == ([], False, False)
        await world.write_to_stream_many("s", "wrun_a", [bytes([i]) for i in range(5)])
        first = await world.get_stream_chunks("s", "wrun_a", limit=3)
        assert [c.index for c in first.data] == [0, 1, 2] and first.has_more and not first.done
        await world.close_stream("s", "wrun_a")
        rest = await world.get_stream_chunks("s", "wrun_a", limit=3, cursor=first.cursor)
        assert [c.data for c in rest.data] == [b"\x03", b"\x04"] and not rest.has_more and rest.done
        assert (await world.get_stream_chunks("s", "wrun_other")).data == [], "the stream is keyed by its run too"
        assert await world.list_streams_by_run_id("wrun_a") == ["s"]
        for bad in ({"limit": 0}, {"limit": 1001}, {"cursor": "x"}):
            with pytest.raises(ValidationError):
                await world.get_stream_chunks("s", "wrun_a", **bad)

    with_world(config, body)


def test_a_negative_start_counts_from_the_current_end(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        await world.write_to_stream_many("s", "wrun_a", [b"a", b"b", b"c"])
        await world.close_stream("s", "wrun_a")
        assert [c async for c in world.read_from_stream("s", -2)] == [b"b", b"c"]
        assert [c async for c in world.read_from_stream("s", -10)] == [b"a", b"b", b"c"]
        assert [c async for c in world.read_from_stream("s", 7)] == []

    with_world(config, body)


def test_a_live_reader_sees_existing_then_new_chunks_and_ends_at_close(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        writer = LocalWorld(config)  # another instance: the reader sees it by polling, not by signal
        try:
            await writer.write_to_stream("s", "wrun_a", b"before")
            received: list[bytes] = []
            first = asyncio.Event()

            async def read() -> None:
                async for chunk in world.read_from_stream("s"):
                    received.append(chunk)
                    first.set()

            reader = asyncio.create_task(read())
            await first.wait()
            await writer.write_to_stream_many("s", "wrun_a", [b"during-1", b"during-2"])
            await writer.close_stream("s", "wrun_a")
            await asyncio.wait_for(reader, 20)
            assert received == [b"before", b"during-1", b"during-2"]
        finally:
            await writer.close()

    with_world(config, body)


@pytest.mark.parametrize(("name", "run_id", "chunk"), [("", "wrun_a", b"x"), ("s", "", b"x"), ("s", "wrun_a", 42)])
def test_bad_stream_arguments_are_validation_errors(config: dict[str, Any], name: str, run_id: str, chunk: Any) -> None:
    async def body(world: LocalWorld) -> None:
        with pytest.raises(ValidationError):
            await world.write_to_stream(name, run_id, chunk)

    with_world(config, body)
