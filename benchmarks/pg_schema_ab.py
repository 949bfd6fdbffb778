"""Server CPU per event of the Postgres World's schema against a variant of it, measured side by side.

    WORLDS_POSTGRES_URL=<a cluster on this host> python benchmarks/pg_schema_ab.py VARIANT.sql [--runs 300] [--rounds 5]

Two schemas are migrated to the latest version; ``VARIANT.sql`` (e.g. a ``CREATE OR REPLACE
FUNCTION`` of a helper, an ``ALTER TABLE``) is applied to the second. One connection per
schema sends query ``create_event`` for the bench's lifecycle (as ``pg_events_breakdown.py``
``sql`` does), the two **alternating lifecycle by lifecycle**, and each backend's CPU time
(``/proc/<pid>/stat``) is read per round. Load from other processes falls on both sides
alike, so the per-round ratio B/A holds still where absolute figures swing 2x: an A/A run
(``VARIANT.sql`` = ``SELECT 1;``) gave ratios 0.98-1.01. The variant must keep the query's
columns and the rules; run ``tests/postgres`` on it before believing a gain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
from collections.abc import Callable
from pathlib import Path

import psycopg
from pg_events_breakdown import _cpu_seconds, _lifecycle

from reference_worlds.postgres.config import URL_ENV
from reference_worlds.postgres.migrations import migrate
from reference_worlds.postgres.plugin import drop_schema
from reference_worlds.postgres.rows import entity_of
from reference_worlds.postgres.storage import create_event_query
from worlds_sdk import bench
from worlds_sdk.ids import new_id


def _lifecycles(conn: psycopg.Connection[tuple[object, ...]]) -> Callable[[], None]:
    statements = {kind: create_event_query(kind).encode() for kind in ("run", "step")}

    def lifecycle() -> None:
        for params in _lifecycle(new_id("wrun")):
            conn.execute(statements[entity_of(params["event_type"])], params, prepare=True)

    return lifecycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", type=Path, help="SQL applied to schema B after migrating it")
    parser.add_argument("--runs", type=int, default=300, help="lifecycles (6 events each) per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = os.environ[URL_ENV]
    schemas = {side: f"ab_{side.lower()}_{secrets.token_hex(5)}" for side in ("A", "B")}
    conns: dict[str, psycopg.Connection[tuple[object, ...]]] = {}
    try:
        for side, schema in schemas.items():
            migrate(url, schema)
            conns[side] = psycopg.connect(url, autocommit=True, options=f"-c search_path={schema} -c TimeZone=UTC")
        conns["B"].execute(args.variant.read_text("utf-8").encode())
        lifecycles = {side: _lifecycles(conn) for side, conn in conns.items()}
        pids = {side: int(conn.info.backend_pid) for side, conn in conns.items()}
        for lifecycle in lifecycles.values():
            for _ in range(5):
                lifecycle()  # prepared, caches warm
        per_event: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(args.rounds):
            start = {side: _cpu_seconds(pid) for side, pid in pids.items()}
            for i in range(args.runs):
                for side in ("A", "B") if i % 2 else ("B", "A"):
                    lifecycles[side]()
            for side, pid in pids.items():
                spent = _cpu_seconds(pid) - start[side]
                per_event[side].append(spent / (args.runs * bench.EVENTS_PER_RUN) * 1e6)
        for side, figures in per_event.items():
            print(f"{side}: server cpu {statistics.median(figures):,.0f} us per event (median of {args.rounds})")
        ratios = [b / a for a, b in zip(per_event["A"], per_event["B"], strict=True)]
        print(f"B/A per round: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
    finally:
        for conn in conns.values():
            conn.close()
        for schema in schemas.values():
            drop_schema(url, schema)


if __name__ == "__main__":
    main()
