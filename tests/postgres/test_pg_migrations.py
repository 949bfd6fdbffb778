"""Migrations: they add up to schema.sql, are idempotent, race safely, and refuse a newer schema."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.migrations import latest_version, migrate, migrations, schema_sql
from reference_worlds.postgres.plugin import PostgresSandbox, drop_schema
from worlds_sdk.errors import IncompatibleFormatError

pytestmark = pytest.mark.postgres

CATALOG = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = %(s)s""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %(s)s""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
    "functions": """
        SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc,
               p.provolatile, l.lanname, p.proconfig::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = %(s)s""",
    "sequences": """
        SELECT sequence_name, data_type, start_value, increment
        FROM information_schema.sequences WHERE sequence_schema = %(s)s""",
}


def catalog(url: str, schema: str) -> dict[str, list[tuple[str, ...]]]:
    """Everything the schema defines, with its own name replaced so two schemas compare."""
    with psycopg.connect(url) as conn:
        return {
            what: sorted(
                tuple(
                    str(v).replace(f'"{schema}".', "<s>.").replace(f"{schema}.", "<s>.").replace(schema, "<s>")
                    for v in row
                )
                for row in conn.execute(query.encode(), {"s": schema}).fetchall()
            )
            for what, query in CATALOG.items()
        }


@pytest.fixture
def fresh_schema(pg_sandbox: PostgresSandbox) -> Iterator[Callable[[], str]]:
    """Names for schemas that do not exist yet; all are dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(f"m_{secrets.token_hex(6)}")
        return made[-1]

    yield make
    for schema in made:
        drop_schema(pg_sandbox.url, schema)


def test_migrations_add_up_to_schema_sql(pg_sandbox: PostgresSandbox, fresh_schema: Callable[[], str]) -> None:
    url = pg_sandbox.url
    migrated, snapshot = fresh_schema(), fresh_schema()
    assert migrate(url, migrated) == latest_version()
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(snapshot)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(snapshot)))
        conn.execute(schema_sql().encode())
    got, expected = catalog(url, migrated), catalog(url, snapshot)
    assert expected["functions"] and expected["indexes"]
    for what in CATALOG:
        assert got[what] == expected[what], what


def test_migrate_is_idempotent(pg_sandbox: PostgresSandbox, fresh_schema: Callable[[], str]) -> None:
    schema = fresh_schema()
    assert migrate(pg_sandbox.url, schema) == migrate(pg_sandbox.url, schema) == latest_version()
    with psycopg.connect(pg_sandbox.url) as conn:
        rows = conn.execute(sql.SQL("SELECT version, name FROM {}.schema_version").format(sql.Identifier(schema)))
        assert rows.fetchall() == [(m.version, m.name) for m in migrations()]


def test_two_processes_migrating_at_once_apply_each_migration_once(
    pg_sandbox: PostgresSandbox, fresh_schema: Callable[[], str], race: Any
) -> None:
    config = {"url": pg_sandbox.url, "schema": fresh_schema()}
    outcomes = race(config, [{"op": "migrate"}, {"op": "migrate"}, {"op": "migrate"}])
    assert outcomes == [{"ok": latest_version()}] * 3
    with psycopg.connect(pg_sandbox.url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(config["schema"]))
        ).fetchall()
    assert [v for (v,) in rows] == [m.version for m in migrations()]


def test_a_newer_schema_is_refused_with_one_clear_error(pg_config: dict[str, Any]) -> None:
    newer = latest_version() + 1
    with psycopg.connect(pg_config["url"], autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version (version, name) VALUES (%s, 'from_the_future')").format(
                sql.Identifier(pg_config["schema"])
            ),
            (newer,),
        )
    with pytest.raises(IncompatibleFormatError, match=f"version {newer}.*upgrade worlds-sdk"):
        migrate(pg_config["url"], pg_config["schema"])

    async def open_world() -> None:
        world = PostgresWorld(pg_config)
        try:
            await world.start()
        finally:
            await world.close()

    with pytest.raises(IncompatibleFormatError, match=f"version {newer}"):
        asyncio.run(open_world())
