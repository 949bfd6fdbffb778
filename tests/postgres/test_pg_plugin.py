"""The plugin record and the sandbox that gives each test instance its own schema."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.database import application_name
from reference_worlds.postgres.migrations import latest_version
from reference_worlds.postgres.plugin import PostgresSandbox
from worlds_sdk.capabilities import Capability
from worlds_sdk.discovery import resolve_world
from worlds_sdk.protocols import BatchStreamer, World

pytestmark = pytest.mark.postgres


def test_backend_is_discovered_with_its_capabilities() -> None:
    backend = resolve_world("postgres")
    assert backend.id == "postgres" and backend.spec_versions == frozenset({3})
    assert backend.capabilities == {
        Capability.MULTI_PROCESS,
        Capability.DURABLE_QUEUE,
        Capability.DELAYED_DELIVERY,
        Capability.LIVE_STREAMS,
        Capability.CRASH_SAFE,
        Capability.INSPECTION,
    }
    world = backend.factory({"url": "postgresql://nowhere/db"})
    assert isinstance(world, World) and isinstance(world, BatchStreamer)


def _schemas(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return int(row[0]) if row else 0


def test_instance_is_a_fresh_migrated_schema_dropped_even_with_a_leaked_connection(pg_sandbox: PostgresSandbox) -> None:
    with pg_sandbox.instance() as config:
        schema = str(config["schema"])
        assert _schemas(pg_sandbox.url, schema) == 1

        async def empty() -> bool:
            world = PostgresWorld(config)
            try:
                return not (await world.runs.list()).data
            finally:
                await world.close()

        assert asyncio.run(empty())
        leaked = psycopg.connect(pg_sandbox.url, application_name=application_name(schema))
        leaked.execute(f"LOCK TABLE {schema}.runs")  # a crashed test child holding a lock
    assert _schemas(pg_sandbox.url, schema) == 0
    with pytest.raises(psycopg.OperationalError):  # the sandbox ended it to drop the schema
        leaked.execute("SELECT 1")
    leaked.close()


def test_backend_migrates_a_configured_schema(pg_config: dict[str, object]) -> None:
    backend = resolve_world("postgres")
    assert backend.migrate is not None
    summary = backend.migrate({"url": pg_config["url"], "schema": pg_config["schema"]})
    assert summary == f"schema {pg_config['schema']!r} is at version {latest_version()}"
