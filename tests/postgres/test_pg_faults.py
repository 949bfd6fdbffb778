"""Faults while a consumer works: killed connections and a crashed server lose no accepted message.

"Accepted" means ``queue()`` returned a message id. Calls that fail during the
fault raise ``WorldUnavailableError`` and are simply not counted (the message may
or may not exist, which at-least-once allows). Afterwards the same World objects
-- no process restart -- deliver every accepted message and keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.database import application_name
from reference_worlds.postgres.plugin import TEST_SETTINGS
from reference_worlds.postgres.server import LocalCluster, find_bindir
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.models import MessageMeta

pytestmark = pytest.mark.postgres

QUEUE = "__wkf_step_faults"
Eventually = Callable[..., Awaitable[Any]]


def terminate_world_connections(url: str, schema: str) -> int:
    """``pg_terminate_backend`` on every connection of the World (pools and the LISTEN connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (application_name(schema),),
        ).fetchone()
    return int(row[0]) if row else 0


def listening(url: str, schema: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN%%'",
            (application_name(schema),),
        ).fetchone()
    return bool(row and row[0])


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
    pg_config: dict[str, Any], eventually: Eventually
) -> None:
    url, schema = pg_config["url"], pg_config["schema"]

    async def body() -> None:
        consumer, producer = PostgresWorld(pg_config), PostgresWorld(pg_config)
        recorder = Recorder()
        consumer.register_handler("__wkf_step_", recorder.handle)
        await consumer.start()
        accepted: list[int] = []
        killed = 0
        try:
            for round_ in range(5):
                await produce(producer, range(round_ * 40, round_ * 40 + 40), accepted)
                killed += await asyncio.to_thread(terminate_world_connections, url, schema)
            assert killed >= 5
            await eventually(lambda: _true(set(accepted) <= recorder.seen), timeout=60, what="every accepted message")
            await eventually(lambda: asyncio.to_thread(listening, url, schema), what="the LISTEN connection is back")
            await produce(producer, range(1000, 1001), accepted)
            await eventually(lambda: _true(1000 in recorder.seen), what="delivery after the faults")
        finally:
            await consumer.close()
            await producer.close()

    asyncio.run(body())


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A server of this test's own, since it is crashed and restarted mid-test."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no local PostgreSQL server binaries (initdb, pg_ctl) to run a server this test may crash")
    with LocalCluster(bindir) as cluster:
        yield cluster


def test_server_crash_and_restart_loses_no_accepted_message(own_cluster: LocalCluster, eventually: Eventually) -> None:
    config = {**TEST_SETTINGS, "url": own_cluster.url, "schema": "faults", "connect_timeout": 2}

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
