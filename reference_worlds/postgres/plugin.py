"""The ``worlds`` plugin of the Postgres World: its backend record and its test sandbox.

The sandbox starts (or locates) one PostgreSQL server per test session and gives
every instance its own freshly migrated schema, dropped afterwards. A schema per
instance isolates concurrent instances (two Worlds in one test, parallel test
workers) where a shared schema emptied by TRUNCATE could not; the measurements
behind the choice are in docs/postgres-world.md.

psycopg is the optional extra ``worlds-sdk[postgres]``, so this module imports
without it: what needs the driver is imported where it is used. A default
install then lists the World as not installed, with the ``pip install`` that
fixes it (``WorldBackend.extra``), instead of a plugin that failed to load.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from worlds_sdk.backend import Extra, WorldBackend, WorldConfig
from worlds_sdk.capabilities import Capability
from worlds_sdk.hookspecs import hookimpl

from .config import URL_ENV, PostgresConfig
from .server import postgres_server

if TYPE_CHECKING:
    from .world import PostgresWorld

EXTRA = Extra("postgres", ("psycopg", "psycopg_pool"))

TEST_SETTINGS: Mapping[str, Any] = {
    "lease_seconds": 2.0,
    "poll_interval": 0.1,
    "backoff_initial": 0.1,
    "backoff_max": 1.0,
    "shutdown_grace": 2.0,
    "pool_size": 8,
}
"""Instance defaults for tests and ``worlds bench``: short leases, polls and retry backoffs (the local
World's sandbox has the same) keep lease-expiry and redelivery tests to seconds.

The pool (which opens connections only as concurrent calls need them) is smaller than the
default 10 to bound the connections of many test Worlds on one server, and as large as the
bench's 8 runs in flight, which its 8-connection commit floor is measured with.
"""


def create_world(config: WorldConfig) -> PostgresWorld:
    from .world import PostgresWorld

    return PostgresWorld(PostgresConfig.from_mapping(config))


def migrate_world(config: WorldConfig) -> str:
    """``worlds migrate postgres``: apply pending migrations to the configured schema."""
    from .migrations import migrate

    parsed = PostgresConfig.from_mapping(config)
    return f"schema {parsed.schema!r} is at version {migrate(parsed.conninfo(), parsed.schema)}"


SANDBOX_ONLY = frozenset({"url", "durable"})
"""Sandbox settings that choose the server, not an instance's config."""


class PostgresSandbox:
    """One server; :meth:`instance` makes a fresh schema on it per isolated World."""

    def __init__(self, url: str, settings: WorldConfig) -> None:
        self.url = url
        self.settings = {k: v for k, v in settings.items() if k not in SANDBOX_ONLY}

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        from .migrations import migrate

        schema = f"t_{secrets.token_hex(8)}"
        migrate(self.url, schema)
        try:
            yield {**TEST_SETTINGS, **self.settings, "url": self.url, "schema": schema}
        finally:
            drop_schema(self.url, schema)


def drop_schema(url: str, schema: str) -> None:
    """Drop a World's schema, first ending connections still serving it (e.g. of a killed test child)."""
    import psycopg
    from psycopg import sql

    from .database import application_name
    from .errors import translated

    with translated(), psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name(schema),),
        )
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def postgres_sandbox(settings: WorldConfig) -> Iterator[PostgresSandbox]:
    """Start or locate the server once (``settings['url']`` wins over the environment).

    ``settings['durable']`` asks for a local cluster with fsync on (``worlds bench``).
    """
    url = settings.get("url")
    with postgres_server({URL_ENV: url} if url else None, durable=bool(settings.get("durable"))) as server:
        yield PostgresSandbox(server.url, settings)


@hookimpl
def worlds_register() -> list[WorldBackend]:
    return [
        WorldBackend(
            id="postgres",
            factory=create_world,
            sandbox=postgres_sandbox,
            spec_versions=frozenset({3}),
            capabilities=frozenset(
                {
                    Capability.MULTI_PROCESS,
                    Capability.DURABLE_QUEUE,
                    Capability.DELAYED_DELIVERY,
                    Capability.LIVE_STREAMS,
                    Capability.CRASH_SAFE,
                    Capability.INSPECTION,
                }
            ),
            description="Reference World on PostgreSQL: many processes on many hosts share one database.",
            distribution="worlds-sdk",
            default_config=lambda: PostgresConfig().to_mapping(),
            migrate=migrate_world,
            extra=EXTRA,
        )
    ]
