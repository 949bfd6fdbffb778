"""Where the time of one Postgres ``events.create`` goes: client, server, commit.

    WORLDS_POSTGRES_URL=<a cluster> python benchmarks/pg_events_breakdown.py [--runs 200] [--levels 3 4]

On this shared 2-core machine wall times swing 2x from minute to minute, so the
split is measured in **CPU time per event**, which other load disturbs far less:
the client's (``time.process_time``) and the server backend's (``/proc/<pid>/stat``
of the connection's backend; the server must run on this host). Each figure is
the median of ``--rounds``, the variants interleaved round by round:

- ``sql``: the six lifecycle calls of query ``create_event`` sent straight from
  psycopg with ready-made parameters, prepared, no World code;
- ``world``: the same lifecycle through ``PostgresWorld.events.create`` (one
  pooled connection).

``world`` minus ``sql`` client CPU is the World's own Python; ``sql`` server CPU
is ``create_event_v1`` and its commit. ``--levels`` runs ``sql`` on schemas migrated
to each given migration (e.g. ``3 4``: before and after 0004; ``world`` only on the
latest, since a World migrates its schema on first use). With
``pg_stat_statements`` loaded (``shared_preload_libraries``) and, for the nested
split, ``pg_stat_statements.track = all`` and ``track_functions = pl``, the
server's own execution time per statement and function is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.config import URL_ENV
from reference_worlds.postgres.database import application_name
from reference_worlds.postgres.migrations import migrate, migrations
from reference_worlds.postgres.nul_escape import escape_json
from reference_worlds.postgres.plugin import drop_schema
from reference_worlds.postgres.rows import entity_of
from reference_worlds.postgres.storage import create_event_query
from worlds_sdk import SPEC_VERSION, bench
from worlds_sdk.codec import dumps
from worlds_sdk.ids import new_id

TICKS = os.sysconf("SC_CLK_TCK")


def _lifecycle(run_id: str) -> list[dict[str, Any]]:
    """The parameters of query ``create_event`` for the bench's six events of one run."""
    requests = [bench._run_created(), *bench.after_run_created(run_id)]
    return [
        {
            "run_id": run_id,
            "event_type": r.event_type,
            "correlation_id": r.correlation_id,
            "data": None if r.event_data is None else escape_json(dumps(r.event_data)),
            "spec_version": r.spec_version,
            "world_spec_version": SPEC_VERSION,
        }
        for r in requests
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _backends(url: str, app: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))
        return [row[0] for row in await cur.fetchall()]


async def _measure(pids: list[int], runs: int, lifecycle: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """Server CPU, client CPU and wall time per event, in microseconds."""
    server, client, wall = sum(map(_cpu_seconds, pids)), time.process_time(), time.perf_counter()
    for _ in range(runs):
        await lifecycle()
    events = runs * bench.EVENTS_PER_RUN
    return {
        "server cpu": (sum(map(_cpu_seconds, pids)) - server) / events * 1e6,
        "client cpu": (time.process_time() - client) / events * 1e6,
        "wall": (time.perf_counter() - wall) / events * 1e6,
    }


async def _sql(url: str, schema: str, runs: int) -> dict[str, float]:
    app = f"breakdown:{schema}"
    options = f"-c search_path={schema} -c TimeZone=UTC"
    statements = {kind: create_event_query(kind).encode() for kind in ("run", "step")}
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, options=options, application_name=app
    ) as conn:

        async def lifecycle() -> None:
            for params in _lifecycle(new_id("wrun")):
                await conn.execute(statements[entity_of(params["event_type"])], params, prepare=True)

        for _ in range(3):
            await lifecycle()  # prepared, caches warm
        return await _measure(await _backends(url, app), runs, lifecycle)


async def _world(url: str, schema: str, runs: int) -> dict[str, float]:
    return await world_cpu(PostgresWorld({"url": url, "schema": schema, "pool_size": 1}), url, schema, runs)


async def world_cpu(world: Any, url: str, schema: str, runs: int) -> dict[str, float]:
    """CPU per event of the bench's lifecycle through ``world`` (one pooled connection to ``schema``); closes it."""
    try:
        for _ in range(3):
            await bench.one_run(world)
        pids = await _backends(url, application_name(schema))
        return await _measure(pids, runs, lambda: bench.one_run(world))
    finally:
        await world.close()


def _server_split(url: str, schema: str, runs: int) -> list[str]:
    """The server's execution time per statement (no commit: autocommit commits after it), if it can tell."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
        except psycopg.Error:
            return ["(no pg_stat_statements: load it with shared_preload_libraries for the server's split)"]
        conn.execute("SELECT pg_stat_reset()")
    asyncio.run(_sql(url, schema, runs))
    lines = []
    with psycopg.connect(url, autocommit=True) as conn:
        for calls, mean, text in conn.execute(
            "SELECT calls, mean_exec_time, query FROM pg_stat_statements"
            " WHERE query LIKE '%%create_event_v1(%%' OR query LIKE 'WITH e AS (INSERT%%'"
            " OR NOT toplevel ORDER BY toplevel DESC, total_exec_time DESC LIMIT 14"
        ):
            lines.append(f"  {mean * 1000:6.0f} us x {calls:5d}  {' '.join(text.split())[:100]}")
        for name, calls, total, own in conn.execute(
            "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions"
            " WHERE schemaname = %s ORDER BY total_time DESC",
            (schema,),
        ):
            lines.append(
                f"  function {name}: {calls} calls, {total / calls * 1000:.0f} us, {own / calls * 1000:.0f} us self"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="lifecycles (6 events each) per figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", type=int, nargs="+", default=[len(migrations())], help="migrations applied")
    args = parser.parse_args()
    url = os.environ[URL_ENV]
    schemas = {level: f"b{level}_{secrets.token_hex(5)}" for level in args.levels}
    for level, schema in schemas.items():
        migrate(url, schema, migrations()[:level])
    try:
        results: dict[tuple[int, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for level, schema in schemas.items():
                for name, variant in (("sql", _sql), ("world", _world)):
                    if name == "world" and level < len(migrations()):
                        continue  # the World would migrate the schema to the latest version first
                    results.setdefault((level, name), []).append(asyncio.run(variant(url, schema, args.runs)))
        for (level, name), rounds in results.items():
            medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            print(
                f"migrations 1-{level}, {name:5s}: "
                + ", ".join(f"{key} {value:,.0f} us" for key, value in medians.items())
                + f" per event (median of {args.rounds})"
            )
        for level, schema in schemas.items():
            print(f"server execution time per statement, migrations 1-{level}:")
            for line in _server_split(url, schema, args.runs):
                print(line)
    finally:
        for schema in schemas.values():
            drop_schema(url, schema)


if __name__ == "__main__":
    main()
