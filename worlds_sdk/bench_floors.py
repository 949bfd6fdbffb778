"""Storage floors for ``worlds bench``: what the storage engine allows, measured in the same run.

Absolute figures on a shared machine swing by up to 2x from day to day; a World's
rate divided by its storage engine's floor, both measured in one run on the same
disk or server, does not. So every World figure is printed with its ratio to the
floor of the storage it uses, read from the sandbox instance's config: a
PostgreSQL ``url`` means the PostgreSQL floors on that server, a ``path`` the
SQLite floors in that directory.

The floors are the least work a durable World must do per event or message:

- SQLite: one ``BEGIN IMMEDIATE`` transaction inserting an event row and
  updating a run row, in WAL mode with ``synchronous=FULL`` (the local World's
  own setting); claim+ack is one such transaction to claim and one to delete;
- PostgreSQL: one statement (a CTE insert + update) committed per event, on 1
  and on 8 connections; claim+ack is an ``UPDATE … FOR UPDATE SKIP LOCKED``
  claim and a ``DELETE``, each committed, message by message.

psycopg is optional (the ``postgres`` extra): without it there are no
PostgreSQL floors, and the figures of such a World carry no ratio.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOAD = b"\x00" * 64


@dataclass(frozen=True)
class Floors:
    """Floors in operations per second; ``commit_8`` is ``None`` where the engine has one writer.

    ``commit_p50_ms`` and ``commit_p99_ms`` are the latency of one commit of the
    one-writer floor: a durable enqueue is at least one commit, so they are the
    floor of the paced enqueue→handler latency measured beside them.
    """

    storage: str
    commit_1: float
    commit_8: float | None
    claim_ack: float
    commit_p50_ms: float
    commit_p99_ms: float


def storage_of(config: Mapping[str, Any]) -> str | None:
    """``"postgres"``, ``"sqlite"`` or ``None``: which floor a World instance's config points at."""
    url = config.get("url")
    if isinstance(url, str) and url.startswith(("postgres://", "postgresql://")):
        return "postgres"
    if isinstance(config.get("path"), str):
        return "sqlite"
    return None


def measure(config: Mapping[str, Any], count: int) -> Floors | None:
    """The floors of the storage behind ``config``, ``count`` operations each; ``None`` if unknown."""
    storage = storage_of(config)
    if storage == "sqlite":
        directory = Path(config["path"]).parent
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="floor-", dir=directory) as tmp:
            commit_1, latencies = _sqlite_commits(Path(tmp), count)
            claim_ack = _sqlite_claim_ack(Path(tmp), count)
            return Floors("sqlite", commit_1, None, claim_ack, *_p50_p99(latencies))
    if storage == "postgres":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return None
        return asyncio.run(_postgres_floors(config["url"], count))
    return None


def _sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank), for every latency figure of the bench."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _p50_p99(latencies: list[float]) -> tuple[float, float]:
    return percentile(latencies, 0.50), percentile(latencies, 0.99)


def _sqlite_commits(directory: Path, count: int) -> tuple[float, list[float]]:
    """Commits per second, and each commit's milliseconds."""
    conn = _sqlite(directory / "commits.db")
    try:
        conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, run TEXT NOT NULL, data BLOB)")
        conn.execute("INSERT INTO runs VALUES ('r', 0)")
        latencies = []
        started = time.perf_counter()
        for _ in range(count):
            begun = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO events (run, data) VALUES ('r', ?)", (PAYLOAD,))
            conn.execute("UPDATE runs SET n = n + 1 WHERE id = 'r'")
            conn.execute("COMMIT")
            latencies.append((time.perf_counter() - begun) * 1000)
        return count / (time.perf_counter() - started), latencies
    finally:
        conn.close()


def _sqlite_claim_ack(directory: Path, count: int) -> float:
    conn = _sqlite(directory / "queue.db")
    try:
        conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, claimed INTEGER NOT NULL DEFAULT 0, body BLOB)")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO q (body) VALUES (?)", [(PAYLOAD,)] * count)
        conn.execute("COMMIT")
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("BEGIN IMMEDIATE")
            (claimed,) = conn.execute(
                "UPDATE q SET claimed = 1 WHERE id = (SELECT id FROM q WHERE claimed = 0 ORDER BY id LIMIT 1)"
                " RETURNING id"
            ).fetchone()
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM q WHERE id = ?", (claimed,))
            conn.execute("COMMIT")
        return count / (time.perf_counter() - started)
    finally:
        conn.close()


async def _postgres_floors(url: str, count: int) -> Floors:
    import psycopg
    from psycopg import sql

    schema = f"floor_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            await admin.execute(
                sql.SQL(
                    "CREATE TABLE {s}.runs (id text PRIMARY KEY, n bigint NOT NULL);"
                    "CREATE TABLE {s}.events (id bigserial PRIMARY KEY, run text NOT NULL, data bytea);"
                    "CREATE TABLE {s}.q (id bigserial PRIMARY KEY, claimed_at timestamptz, body bytea)"
                ).format(s=sql.Identifier(schema))
            )
            commit_1, latencies = await _postgres_commits(url, schema, count, 1)
            commit_8, _ = await _postgres_commits(url, schema, count, 8)
            claim_ack = await _postgres_claim_ack(url, schema, count)
        finally:
            await admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return Floors("postgres", commit_1, commit_8, claim_ack, *_p50_p99(latencies))


async def _postgres_commits(url: str, schema: str, count: int, connections: int) -> tuple[float, list[float]]:
    """Commits per second over ``connections``, and each commit's milliseconds."""
    import psycopg

    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=True, options=f"-c search_path={schema}")
        for _ in range(connections)
    ]
    try:
        for i, conn in enumerate(conns):
            await conn.execute("INSERT INTO runs VALUES (%s, 0) ON CONFLICT DO NOTHING", (f"r{i}",))
        statement = (
            "WITH e AS (INSERT INTO events (run, data) VALUES (%(run)s, %(data)s))"
            " UPDATE runs SET n = n + 1 WHERE id = %(run)s"
        )

        latencies: list[float] = []

        async def writer(i: int, conn: psycopg.AsyncConnection[Any]) -> None:
            for _ in range(count // connections):
                begun = time.perf_counter()
                await conn.execute(statement, {"run": f"r{i}", "data": PAYLOAD}, prepare=True)
                latencies.append((time.perf_counter() - begun) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(writer(i, conn) for i, conn in enumerate(conns)))
        return (count // connections) * connections / (time.perf_counter() - started), latencies
    finally:
        for conn in conns:
            await conn.close()


async def _postgres_claim_ack(url: str, schema: str, count: int) -> float:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO q (body) VALUES (%s)", [(PAYLOAD,)] * count)
        started = time.perf_counter()
        for _ in range(count):
            cur = await conn.execute(
                "UPDATE q SET claimed_at = now() FROM"
                " (SELECT id FROM q WHERE claimed_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) c"
                " WHERE q.id = c.id RETURNING q.id",
                prepare=True,
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute("DELETE FROM q WHERE id = %s", row, prepare=True)
        return count / (time.perf_counter() - started)


def median_floors(samples: list[Floors]) -> Floors | None:
    """The median of each floor over repetitions (all of one storage)."""
    if not samples:
        return None
    eights = [s.commit_8 for s in samples if s.commit_8 is not None]
    return Floors(
        samples[0].storage,
        statistics.median(s.commit_1 for s in samples),
        statistics.median(eights) if eights else None,
        statistics.median(s.claim_ack for s in samples),
        statistics.median(s.commit_p50_ms for s in samples),
        statistics.median(s.commit_p99_ms for s in samples),
    )
