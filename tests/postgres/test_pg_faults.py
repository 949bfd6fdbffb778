"""Faults while a consumer works: killed connections and a crashed server lose no accepted message.

"Accepted" means ``queue()`` returned a message id. Calls that fail during the
fault raise ``WorldUnavailableError`` and are simply not counted (the message may
or may not exist, which at-least-once allows). Afterwards the same World objects
-- no process restart -- deliver every accepted message and keep working.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from conformance.builders import hook_request, new_run, new_step, step_request
from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.plugin import TEST_SETTINGS
from reference_worlds.postgres.server import LocalCluster, find_bindir
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.models import MessageMeta

from .proxy import Proxy

pytestmark = pytest.mark.postgres

QUEUE = "__wkf_step_faults"
Eventually = Callable[..., Awaitable[Any]]


class Recorder:
    def __init__(self) -> None:
        self.seen: set[int] = set()

    async def handle(self, message: Any, meta: MessageMeta) -> None:
        await asyncio.sleep(0.002)  # long enough to be caught mid-handler now and then
        self.seen.add(message["n"])


async def produce(world: PostgresWorld, numbers: range, accepted: list[int]) -> None:
    for n in numbers:
        try:
            await world.queue(QUEUE, {"n": n})
        except WorldUnavailableError:
            continue
        accepted.append(n)


def test_terminated_connections_lose_no_accepted_message_and_the_world_recovers(
    pg_config: dict[str, Any], eventually: Eventually, connections: Any
) -> None:
    config = {**pg_config, "lease_seconds": 1.0}

    async def body() -> None:
        consumer, producer = PostgresWorld(config), PostgresWorld(config)
        recorder = Recorder()
        consumer.register_handler("__wkf_step_", recorder.handle)
        await consumer.start()
        accepted: list[int] = []
        killed = 0
        try:
            for round_ in range(3):
                await produce(producer, range(round_ * 40, round_ * 40 + 40), accepted)
                killed += await asyncio.to_thread(connections.terminate)
            assert killed >= 3
            await eventually(lambda: _true(set(accepted) <= recorder.seen), timeout=60, what="every accepted message")
            await eventually(lambda: asyncio.to_thread(connections.listening), what="the LISTEN connection is back")
            await produce(producer, range(1000, 1001), accepted)
            await eventually(lambda: _true(1000 in recorder.seen), what="delivery after the faults")
        finally:
            await consumer.close()
            await producer.close()

    asyncio.run(body())


async def _true(value: bool) -> bool:
    return value


async def _hook_received_twice(world: PostgresWorld, proxy: Proxy) -> None:
    run = await new_run(world, started=True)
    await world.events.create(run.run_id, hook_request("hook_created", "hook_cut", token="tok_cut"))
    proxy.cut_reply("hook_cut")
    with pytest.raises(WorldUnavailableError):
        await world.events.create(run.run_id, hook_request("hook_received", "hook_cut", payload=b"\x00once"))
    events = (await world.events.list_by_correlation_id("hook_cut", run_id=run.run_id)).data
    assert [e.event_type for e in events] == ["hook_created", "hook_received"]


async def _chunk_written_twice(world: PostgresWorld, proxy: Proxy) -> None:
    proxy.cut_reply("stream_cut")
    with pytest.raises(WorldUnavailableError):
        await world.write_to_stream("stream_cut", "wrun_x", b"once")
    page = await world.get_stream_chunks("stream_cut", "wrun_x")
    assert [chunk.data for chunk in page.data] == [b"once"]


async def _step_completed_then_conflict(world: PostgresWorld, proxy: Proxy) -> None:
    run = await new_run(world, started=True)
    await new_step(world, run.run_id, "step_cut", started=True)
    proxy.cut_reply("step_cut")
    with pytest.raises(WorldUnavailableError):  # the replay used to answer 409 for a write that succeeded
        await world.events.create(run.run_id, step_request("step_completed", "step_cut"))
    assert (await world.steps.get(run.run_id, "step_cut")).status == "completed"


@pytest.mark.parametrize("fatal", [True, False], ids=["admin_shutdown", "connection_lost"])
@pytest.mark.parametrize("write", [_hook_received_twice, _chunk_written_twice, _step_completed_then_conflict])
def test_a_write_whose_reply_is_lost_after_commit_is_never_replayed(
    pg_config: dict[str, Any], write: Callable[[PostgresWorld, Proxy], Awaitable[None]], fatal: bool
) -> None:
    """Issue 13 item 3: the write committed, the reply was lost; the caller gets 503, the write stays single.

    ``admin_shutdown`` is what the client sees when the server ends the backend
    between COMMIT and the reply; ``connection_lost`` a network failure there.
    """

    async def body() -> None:
        async with Proxy(pg_config["url"], fatal=fatal).running() as proxy:
            world = PostgresWorld({**pg_config, "url": proxy.url()})
            try:
                await write(world, proxy)
                assert proxy.cuts == 1
            finally:
                await world.close()

    asyncio.run(body())


def test_a_read_whose_connection_the_server_ended_is_answered_from_a_fresh_connection(
    pg_config: dict[str, Any],
) -> None:
    """Reads are still retried after ``admin_shutdown``, inside a READ ONLY transaction."""

    async def body() -> None:
        async with Proxy(pg_config["url"]).running() as proxy:
            world = PostgresWorld({**pg_config, "url": proxy.url()})
            try:
                run = await new_run(world)
                proxy.cut_reply(run.run_id)
                assert (await world.runs.get(run.run_id)).run_id == run.run_id
                assert proxy.cuts == 1
            finally:
                await world.close()

    asyncio.run(body())


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A server of this test's own, since it is crashed and restarted mid-test."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no local PostgreSQL server binaries (initdb, pg_ctl) to run a server this test may crash")
    with LocalCluster(bindir) as cluster:
        yield cluster


def test_server_crash_and_restart_loses_no_accepted_message(own_cluster: LocalCluster, eventually: Eventually) -> None:
    config = {**TEST_SETTINGS, "url": own_cluster.url, "schema": "faults", "connect_timeout": 2, "lease_seconds": 1.0}

    async def body() -> None:
        consumer, producer = PostgresWorld(config), PostgresWorld(config)
        recorder = Recorder()
        consumer.register_handler("__wkf_step_", recorder.handle)
        await consumer.start()
        accepted: list[int] = []
        try:
            await produce(producer, range(50), accepted)
            await asyncio.to_thread(own_cluster.restart, "immediate")  # a crash, then WAL recovery
            await produce(producer, range(50, 100), accepted)
            assert len(accepted) >= 90
            await eventually(lambda: _true(set(accepted) <= recorder.seen), timeout=60, what="every accepted message")
        finally:
            await consumer.close()
            await producer.close()

    asyncio.run(body())


@pytest.mark.soak
def test_soak_repeated_kills_and_crashes_lose_nothing(
    own_cluster: LocalCluster, eventually: Eventually, connections_of: Any
) -> None:
    """The two faults above, mixed at random for many rounds; nothing dead-lettered either."""
    config = {**TEST_SETTINGS, "url": own_cluster.url, "schema": "soak", "connect_timeout": 2, "lease_seconds": 1.0}
    connections = connections_of(own_cluster.url, "soak")
    rng = random.Random(7)

    async def body() -> None:
        consumer, producer = PostgresWorld(config), PostgresWorld(config)
        recorder = Recorder()
        consumer.register_handler("__wkf_step_", recorder.handle)
        await consumer.start()
        accepted: list[int] = []
        try:
            for round_ in range(30):
                await produce(producer, range(round_ * 50, round_ * 50 + 50), accepted)
                if rng.random() < 0.2:
                    await asyncio.to_thread(own_cluster.restart, "immediate")
                else:
                    await asyncio.to_thread(connections.terminate)
            await eventually(lambda: _true(set(accepted) <= recorder.seen), timeout=120, what="every accepted message")
            with psycopg.connect(own_cluster.url) as conn:
                assert conn.execute("SELECT count(*) FROM soak.dead_letters").fetchone() == (0,)
        finally:
            await consumer.close()
            await producer.close()

    asyncio.run(body())
