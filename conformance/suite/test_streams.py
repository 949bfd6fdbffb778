"""ST-1, ST-2: named byte streams, live readers, pagination."""

from __future__ import annotations

import asyncio
import base64

import pytest

from conformance import WorldContext, WorldHarness, pins, requires, spec
from conformance.reading import chunk_pages, read_stream
from worlds_sdk.capabilities import Capability
from worlds_sdk.protocols import BatchStreamer

pytestmark = spec(">=2")
RUN = "wrun_01ARZ3NDEKTSV4RRFFQ69G5FAV"


@spec(">=3")
@pins("get_stream_chunks", "limit", "cursor")
def test_ST1_chunks_exact_and_in_order__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        chunks: list[bytes | str] = [b"\x00\xff", "h\u00e9llo", b"", b"x" * 70_000, "\u2603"]
        for c in chunks:
            await w.write_to_stream("s1", RUN, c)
        await w.close_stream("s1", RUN)
        expected = [c.encode() if isinstance(c, str) else c for c in chunks]
        assert await read_stream(w, "s1") == expected
        pages = await chunk_pages(w, "s1", RUN, limit=2)
        listed = [c for p in pages for c in p.data]
        assert [c.index for c in listed] == list(range(len(listed)))
        assert [c.data for c in listed] == expected
        assert pages[-1].done
        info = await w.get_stream_info("s1", RUN)
        assert info.done and info.tail_index == len(listed) - 1
        assert "s1" in await w.list_streams_by_run_id(RUN)

    world.run(body)


def test_ST1_live_reader_sees_existing_then_new_chunks__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        for i in range(3):
            await w.write_to_stream("live", RUN, f"old{i}".encode())
        reader = asyncio.create_task(read_stream(w, "live"))
        for i in range(3):
            await asyncio.sleep(0.05)
            await w.write_to_stream("live", RUN, f"new{i}".encode())
        await w.close_stream("live", RUN)
        got = await asyncio.wait_for(reader, 30)
        assert got == [b"old0", b"old1", b"old2", b"new0", b"new1", b"new2"]

    world.run(body)


@spec(">=3")
@pins("read_from_stream", "start_index")
def test_ST1_negative_start_index_counts_from_end__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        for i in range(10):
            await w.write_to_stream("neg", RUN, bytes([i]))
        await w.close_stream("neg", RUN)
        assert await read_stream(w, "neg", -3) == [bytes([7]), bytes([8]), bytes([9])]
        assert await read_stream(w, "neg", -100) == [bytes([i]) for i in range(10)]
        assert await read_stream(w, "neg", 8) == [bytes([8]), bytes([9])]

    world.run(body)


@spec(">=3")
def test_ST1_info_of_empty_stream__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        info = await ctx.world.get_stream_info("never-written", RUN)
        assert (info.tail_index, info.done) == (-1, False)
        page = await ctx.world.get_stream_chunks("never-written", RUN)
        assert list(page.data) == [] and not page.has_more

    world.run(body)


@requires(Capability.LIVE_STREAMS, Capability.MULTI_PROCESS)
def test_ST1_live_reader_in_another_process__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        await w.write_to_stream("xproc", RUN, b"\x00first")
        child = await ctx.spawn("reader")
        await child.send({"op": "read_stream", "name": "xproc"})
        await child.receive("reading")
        sent = [b"\x00first"]
        for i in range(5):
            await asyncio.sleep(0.05)
            sent.append(bytes([i, 0, 255]))
            await w.write_to_stream("xproc", RUN, sent[-1])
        await w.close_stream("xproc", RUN)
        got: list[bytes] = []
        while True:
            msg = await child.receive(timeout=30)
            if msg["kind"] == "chunk":
                got.append(base64.b64decode(msg["data"]))
            elif msg["kind"] == "result":
                assert msg["ok"], msg
                break
        assert got == sent

    world.run(body)


def test_ST2_writing_does_not_need_the_run__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        await ctx.world.write_to_stream("health", "wrun_fake_health_check", b"ping")
        await ctx.world.close_stream("health", "wrun_fake_health_check")
        assert await read_stream(ctx.world, "health") == [b"ping"]

    world.run(body)


def test_ST1_batch_writes_keep_order__MAY(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        if not isinstance(w, BatchStreamer):
            pytest.skip("the World does not implement the optional write_to_stream_many")
        await w.write_to_stream("batch", RUN, b"a")
        await w.write_to_stream_many("batch", RUN, [b"b", "c", b"\x00d"])
        await w.close_stream("batch", RUN)
        assert await read_stream(w, "batch") == [b"a", b"b", b"c", b"\x00d"]

    world.run(body)
