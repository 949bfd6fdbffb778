"""What per-test isolation costs on PostgreSQL: ``python benchmarks/postgres_isolation.py``.

The figures behind the Postgres sandbox's choice of a fresh schema per test
instance over TRUNCATE of a shared one (docs/postgres-world.md). Throughput and
latency of the World itself are measured by ``worlds bench postgres``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import psycopg
from psycopg import sql

from reference_worlds.postgres.plugin import create_world, postgres_sandbox
from worlds_sdk.backend import WorldConfig
from worlds_sdk.bench import lifecycle_rate

TABLES = ("events", "steps", "hooks", "waits", "runs", "messages", "dead_letters", "stream_chunks", "streams")


async def _use(config: WorldConfig) -> None:
    world = create_world(config)
    try:
        await lifecycle_rate(world, runs=1, in_flight=1)  # 12 events: fills the tables TRUNCATE empties
    finally:
        await world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10, help="instances per measurement")
    parser.add_argument("--runs", type=int, default=3, help="measurements; the median is reported")
    args = parser.parse_args()
    fresh_ms, truncate_ms = [], []
    with postgres_sandbox({}) as sandbox:
        for _ in range(args.runs):
            started = time.perf_counter()
            for _ in range(args.count):
                with sandbox.instance():
                    pass
            fresh_ms.append((time.perf_counter() - started) * 1000 / args.count)
            with sandbox.instance() as config:
                truncate = sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(config["schema"], t) for t in TABLES)
                )
                total = 0.0
                for _ in range(args.count):
                    asyncio.run(_use(config))
                    with psycopg.connect(config["url"], autocommit=True) as conn:
                        started = time.perf_counter()
                        conn.execute(truncate)
                        total += time.perf_counter() - started
                truncate_ms.append(total * 1000 / args.count)
    print(
        f"isolation per test instance (median of {args.runs}): fresh migrated schema + drop "
        f"{statistics.median(fresh_ms):.0f} ms, TRUNCATE {statistics.median(truncate_ms):.0f} ms"
    )


if __name__ == "__main__":
    main()
