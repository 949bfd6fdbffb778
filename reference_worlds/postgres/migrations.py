"""Numbered SQL migrations, applied by worlds itself: on first start and by ``worlds migrate postgres``.

``sql/migrations/NNNN_name.sql`` files run in order, each recorded in the
``schema_version`` table (which migration 0001 creates; a schema without it is at
version 0). All pending migrations run in ONE transaction under an advisory lock
keyed by the schema name, so two processes starting at once apply them exactly
once and the loser simply finds the schema up to date. A database whose version is
newer than the newest migration this code knows is refused with one clear
:class:`~worlds_sdk.errors.IncompatibleFormatError`: old code must not write into a
schema it does not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from worlds_sdk.errors import IncompatibleFormatError

from .config import check_schema
from .errors import translated

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """The shipped migrations in version order; the numbering must be gapless from 1."""
    folder = resources.files("reference_worlds.postgres").joinpath("sql", "migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {[m.version for m in found]}")
    return tuple(found)


def latest_version() -> int:
    return migrations()[-1].version


def schema_sql() -> str:
    """The snapshot ``sql/schema.sql``: what all migrations add up to (a test proves it)."""
    return resources.files("reference_worlds.postgres").joinpath("sql", "schema.sql").read_text("utf-8")


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The schema's version: 0 when the schema or its ``schema_version`` table does not exist."""
    table = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_version',)).fetchone()
    if table is None or table[0] is None:
        return 0
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    return int(row[0]) if row else 0


def check_not_newer(version: int, schema: str) -> None:
    if version > latest_version():
        raise IncompatibleFormatError(
            f"PostgreSQL schema {schema!r} is at version {version}, but this worlds-sdk knows migrations up to "
            f"{latest_version()}: upgrade worlds-sdk (a newer release wrote this schema)"
        )


def migrate(url: str, schema: str = "worlds") -> int:
    """Bring ``schema`` at ``url`` up to date; idempotent and safe under concurrency. Returns the version."""
    check_schema(schema)
    with translated(), psycopg.connect(url, connect_timeout=10) as conn:
        version = current_version(conn, schema)
        check_not_newer(version, schema)
        if version == latest_version():
            return version
        # hashtext() folds the key into the advisory lock's integer space; a collision
        # between two schema names only serialises their migrations, which is harmless.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"worlds-migrate:{schema}",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        version = current_version(conn, schema)  # again, now that we hold the lock
        check_not_newer(version, schema)
        for migration in migrations()[version:]:
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
        conn.commit()
        return latest_version()
