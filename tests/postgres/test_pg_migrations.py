"""Migrations: they add up to schema.sql, are idempotent, race safely, and let old code run where a newer
release allows it (rolling deploys), refusing it otherwise."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conformance.builders import new_run, run_created_request, step_request
from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.migrations import (
    Migration,
    current_version,
    latest_version,
    load_migrations,
    migrate,
    migrations,
    schema_sql,
    verify,
)
from reference_worlds.postgres.nul_escape import escape_json
from reference_worlds.postgres.plugin import TEST_SETTINGS, PostgresSandbox, drop_schema
from worlds_sdk import SPEC_VERSION
from worlds_sdk.codec import dumps
from worlds_sdk.errors import IncompatibleFormatError
from worlds_sdk.ids import new_id
from worlds_sdk.models import EventRequest, Pagination

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


def newer_release(tmp_path: Path, extra: str) -> tuple[Migration, ...]:
    """The shipped migrations plus one more file: the migration list of the next release."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for migration in migrations():
        (folder / f"{migration.version:04d}_{migration.name}.sql").write_text(migration.sql)
    (folder / f"{latest_version() + 1:04d}_next_release.sql").write_text(extra)
    return load_migrations(folder)


ADDITIVE = """-- the next release adds a table and a _v2 function; code that knows {v} keeps working
-- min-code-version: {v}
CREATE TABLE next_release_notes (note text);
CREATE FUNCTION next_release_v2() RETURNS integer LANGUAGE sql AS 'SELECT 2';
"""


async def use_world(config: dict[str, Any]) -> None:
    """Open a World of this code on the schema; start it, write and read through it."""
    world = PostgresWorld(config)
    try:
        await world.start()
        run = await new_run(world, started=True)
        await world.events.create(run.run_id, step_request("step_created", "s1"))
        await world.write_to_stream("out", run.run_id, b"chunk")
        await world.queue("__wkf_step_rolling", {"run": run.run_id})
        assert (await world.runs.get(run.run_id)).status == "running"
    finally:
        await world.close()


def test_old_code_keeps_running_beside_a_newer_release_whose_migration_allows_it(
    pg_config: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 13 item 4: a rolling deploy. The new release migrates; old processes go on, old and new open."""
    newer = newer_release(tmp_path, ADDITIVE.format(v=latest_version()))
    assert newer[-1].min_code_version == latest_version()

    async def side_by_side() -> None:
        old = PostgresWorld(pg_config)  # an old process, running before and during the rollout
        try:
            run = await new_run(old)
            await asyncio.to_thread(migrate, pg_config["url"], pg_config["schema"], newer)  # the new release starts
            await old.events.create(run.run_id, EventRequest(event_type="run_started"))
            await use_world(pg_config)  # an old process (re)started after the migration
        finally:
            await old.close()

    asyncio.run(side_by_side())
    assert migrate(pg_config["url"], pg_config["schema"]) == latest_version() + 1  # old code: nothing to do
    assert verify(pg_config["url"], pg_config["schema"], newer) == latest_version() + 1  # new code
    with psycopg.connect(pg_config["url"]) as conn:
        rows = conn.execute(
            sql.SQL("SELECT version, min_code_version FROM {}.schema_version ORDER BY version").format(
                sql.Identifier(pg_config["schema"])
            )
        ).fetchall()
    assert rows[-1] == (latest_version() + 1, latest_version())


def test_old_code_refuses_a_schema_whose_newer_migration_breaks_it(pg_config: dict[str, Any], tmp_path: Path) -> None:
    """Without a min-code-version line a migration is breaking: older code stops, with one clear error."""
    newer = newer_release(tmp_path, "ALTER TABLE runs ADD COLUMN owner text NOT NULL DEFAULT 'x';\n")
    newest = latest_version() + 1
    assert newer[-1].min_code_version == newest
    migrate(pg_config["url"], pg_config["schema"], newer)
    expected = (
        f"version {newest} and needs code that knows migration {newest}.*knows migrations up to {latest_version()}"
    )
    with pytest.raises(IncompatibleFormatError, match=expected):
        migrate(pg_config["url"], pg_config["schema"])
    with pytest.raises(IncompatibleFormatError, match=expected):
        asyncio.run(use_world(pg_config))
    with pytest.raises(IncompatibleFormatError, match=expected):
        asyncio.run(use_world({**pg_config, "auto_migrate": False}))


def test_a_min_code_version_outside_1_to_its_own_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="min-code-version must be between 1 and"):
        newer_release(tmp_path, f"-- min-code-version: {latest_version() + 2}\nSELECT 1;\n")


@pytest.fixture
def app_role(pg_sandbox: PostgresSandbox) -> Iterator[Callable[[str], str]]:
    """``app_role(schema)``: the URL of a new login role with data rights on ``schema`` and no DDL rights."""
    role, password = f"app_{secrets.token_hex(6)}", secrets.token_urlsafe(12)
    with psycopg.connect(pg_sandbox.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))

    def url_for(schema: str) -> str:
        with psycopg.connect(pg_sandbox.url, autocommit=True) as conn:
            for grant in (
                "GRANT USAGE ON SCHEMA {s} TO {r}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
            ):
                conn.execute(sql.SQL(grant).format(s=sql.Identifier(schema), r=sql.Identifier(role)))
        params = conninfo_to_dict(pg_sandbox.url)
        return make_conninfo("", **{**{k: str(v) for k, v in params.items()}, "user": role, "password": password})

    yield url_for
    with psycopg.connect(pg_sandbox.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_with_auto_migrate_off_a_role_without_ddl_rights_runs_a_migrated_schema_and_is_told_to_migrate(
    pg_sandbox: PostgresSandbox, fresh_schema: Callable[[], str], app_role: Callable[[str], str]
) -> None:
    """Issue 13 item 4: automatic migration is opt-out, for application roles that may not change the schema."""
    migrated, empty = fresh_schema(), fresh_schema()
    migrate(pg_sandbox.url, migrated)
    with psycopg.connect(pg_sandbox.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(empty)))
    config = {**TEST_SETTINGS, "auto_migrate": False}
    asyncio.run(use_world({**config, "url": app_role(migrated), "schema": migrated}))
    with pytest.raises(IncompatibleFormatError, match=r"at version 0.*auto_migrate is off: run `worlds migrate"):
        asyncio.run(use_world({**config, "url": app_role(empty), "schema": empty}))
    with psycopg.connect(pg_sandbox.url) as conn:
        assert current_version(conn, empty) == 0, "nothing was created"


def test_a_run_written_before_0005_goes_on_after_it_and_its_log_pages_in_order(
    pg_sandbox: PostgresSandbox, fresh_schema: Callable[[], str]
) -> None:
    """0005 rebuilt the key of ``events`` as (run_id, seq) and rewrote create_event_v1: a run begun before goes on.

    The first events are written by the level-4 function, as the previous release
    called it; then a World of this release migrates the schema, with those rows
    in it, and finishes the run.
    """
    url, schema = pg_sandbox.url, fresh_schema()
    migrate(url, schema, migrations()[:4])
    run_id = new_id("wrun")
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        assert current_version(conn, schema) == 4
        for request in (
            run_created_request(),
            EventRequest(event_type="run_started"),
            step_request("step_created", "s"),
        ):
            data = None if request.event_data is None else escape_json(dumps(request.event_data))
            conn.execute(
                "SELECT cardinality(o_events) FROM create_event_v1(%s, %s, %s, %s::json, NULL, %s)",
                (run_id, request.event_type, request.correlation_id, data, SPEC_VERSION),
            )
    pg_config = {**TEST_SETTINGS, "url": url, "schema": schema}

    async def go_on() -> None:
        world = PostgresWorld(pg_config)  # migrates the schema on first use
        try:
            for request in (step_request("step_started", "s"), step_request("step_completed", "s")):
                await world.events.create(run_id, request)
            done = await world.events.create(
                run_id, EventRequest(event_type="run_completed", event_data={"output": b""})
            )
            assert done.run is not None and done.run.status == "completed"
            first = await world.events.list(run_id, pagination=Pagination(limit=4))
            rest = await world.events.list(run_id, pagination=Pagination(limit=4, cursor=first.cursor))
            events = [*first.data, *rest.data]
            assert [e.event_type for e in events] == [
                "run_created", "run_started", "step_created", "step_started", "step_completed", "run_completed"
            ]  # fmt: skip
            assert [e.event_id for e in events] == sorted(e.event_id for e in events)
            assert (await world.steps.get(run_id, "s")).status == "completed"
        finally:
            await world.close()

    asyncio.run(go_on())
    with psycopg.connect(url) as conn:
        assert current_version(conn, schema) == latest_version()
