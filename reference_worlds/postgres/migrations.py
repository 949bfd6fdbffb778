"""Numbered SQL migrations, applied by worlds itself: on first use (unless ``auto_migrate`` is off) and by
``worlds migrate postgres``.

``sql/migrations/NNNN_name.sql`` files run in order, each recorded in the
``schema_version`` table (which migration 0001 creates; a schema without it is at
version 0). All pending migrations run in ONE transaction under an advisory lock
keyed by the schema name, so two processes starting at once apply them exactly
once and the loser simply finds the schema up to date.

**Rolling deploys.** A *code version* is the number of the newest migration the
code ships. Each migration declares the oldest code version that still works on a
schema it has been applied to, in a line ``-- min-code-version: N`` of its file;
without that line it is its own number (the safe default: old code stops). The
runner stores that number with the migration (``schema_version.min_code_version``),
so code older than a schema can read what the newer release promised: it runs
when every applied migration allows it, and is refused with one clear
:class:`~worlds_sdk.errors.IncompatibleFormatError` otherwise. A migration that
only adds (a ``_v2`` function beside ``_v1``, a nullable column) says
``-- min-code-version: 1`` and old processes keep working while a new release
rolls out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import psycopg
from psycopg import sql

from worlds_sdk.errors import IncompatibleFormatError

from .config import check_schema
from .errors import translated

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MIN_CODE_RE = re.compile(r"^-- min-code-version: (\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    min_code_version: int
    """The oldest code version (newest migration it ships) that works on a schema with this migration."""


def load_migrations(folder: Traversable) -> tuple[Migration, ...]:
    """The migrations in ``folder``, in version order; the numbering must be gapless from 1."""
    found = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            version, text = int(match.group(1)), entry.read_text("utf-8")
            declared = _MIN_CODE_RE.search(text)
            min_code = int(declared.group(1)) if declared else version
            if not 1 <= min_code <= version:
                raise RuntimeError(f"{entry.name}: min-code-version must be between 1 and {version}, not {min_code}")
            found.append(Migration(version, match.group(2), text, min_code))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {[m.version for m in found]}")
    return tuple(found)


@cache
def migrations() -> tuple[Migration, ...]:
    """The migrations this code ships."""
    return load_migrations(resources.files("reference_worlds.postgres").joinpath("sql", "migrations"))


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


def compatible_version(conn: psycopg.Connection[Any], schema: str, known: Sequence[Migration]) -> int:
    """The schema's version, after checking that code knowing ``known`` may run on it.

    A schema ahead of the code is fine when every applied migration allows this
    code version; the stored numbers say so (the code does not know those files).
    """
    version, code = current_version(conn, schema), known[-1].version
    if version <= code:
        return version
    row = conn.execute(
        sql.SQL("SELECT max(min_code_version) FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    assert row is not None
    needed = int(row[0])
    if needed > code:
        raise IncompatibleFormatError(
            f"PostgreSQL schema {schema!r} is at version {version} and needs code that knows migration {needed} "
            f"or later; this worlds-sdk knows migrations up to {code}: upgrade worlds-sdk"
        )
    return version


def verify(url: str, schema: str = "worlds", known: Sequence[Migration] | None = None) -> int:
    """Check, without changing anything, that this code can run on ``schema``; returns its version.

    This is what a World does on first use when ``auto_migrate`` is off: a schema
    behind the code is refused (run ``worlds migrate`` with a role that may change it).
    """
    check_schema(schema)
    known = known or migrations()
    with translated(), psycopg.connect(url, connect_timeout=10) as conn:
        version = compatible_version(conn, schema, known)
    if version < known[-1].version:
        raise IncompatibleFormatError(
            f"PostgreSQL schema {schema!r} is at version {version}, this worlds-sdk needs version "
            f"{known[-1].version} and auto_migrate is off: run `worlds migrate postgres` first"
        )
    return version


def migrate(url: str, schema: str = "worlds", known: Sequence[Migration] | None = None) -> int:
    """Bring ``schema`` at ``url`` up to date; idempotent and safe under concurrency. Returns the version.

    ``known`` is the list of migrations to apply (default: the shipped ones); tests
    pass a longer one to play a newer release.
    """
    check_schema(schema)
    known = known or migrations()
    with translated(), psycopg.connect(url, connect_timeout=10) as conn:
        version = compatible_version(conn, schema, known)
        if version >= known[-1].version:
            return version
        # hashtext() folds the key into the advisory lock's integer space; a collision
        # between two schema names only serialises their migrations, which is harmless.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"worlds-migrate:{schema}",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        version = compatible_version(conn, schema, known)  # again, now that we hold the lock
        pending = [m for m in known if m.version > version]
        for migration in pending:
            conn.execute(migration.sql.encode())
        # Recorded after all of them ran: the min_code_version column is itself added
        # by a migration, maybe one of these.
        for migration in pending:
            conn.execute(
                "INSERT INTO schema_version (version, name, min_code_version) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.min_code_version),
            )
        conn.commit()
        return max(version, known[-1].version)
