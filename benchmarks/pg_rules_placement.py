"""Where should the Postgres World apply the event rules: in PL/pgSQL, or ``rules.decide`` in Python?

    WORLDS_POSTGRES_URL=<a cluster with fsync=on> python benchmarks/pg_rules_placement.py [--runs 300] [--rounds 3]

Issue 8 asks for this measurement before the project keeps two copies of the
rules (``worlds_sdk/rules.py`` and the SQL function ``create_event_v*``, held
equal by ``tests/postgres/test_pg_events.py``). Two ways to do one
``events.create``, both with one commit per event and fsync on, measured on one
server in one process, round by round interleaved, the median of ``--rounds``:

- ``plpgsql``: the World as it is, ``PostgresWorld.events.create`` -- one
  statement calling the SQL function, one round trip;
- ``python``: :class:`PythonRules` below -- in one transaction on one pooled
  connection, pipelined (psycopg pipeline mode): ``BEGIN`` and the snapshot
  reads (the run ``FOR UPDATE``, the run's last event, the step) in one round
  trip; ``rules.decide`` in Python; the writes and ``COMMIT`` in a second
  round trip. It returns ``effects.result`` as it is (nothing read back).

Both on the bench's lifecycle (``worlds_sdk.bench.one_run``: 6 events per run),
1 run in flight and 8, with the bench's one-statement commit floor measured in
the same round for ratios; then the CPU time per event of each, client and
server, as ``pg_events_breakdown.py`` measures it: the machine's other load
disturbs it far less than wall time. The prototype covers what the lifecycle
needs (runs, steps, events) and is not a World: hooks and waits, the NUL escape and the
race retries are left out, which only flatters it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from pg_events_breakdown import world_cpu

from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.config import URL_ENV
from reference_worlds.postgres.database import Database
from reference_worlds.postgres.errors import translated
from reference_worlds.postgres.migrations import migrate
from reference_worlds.postgres.plugin import drop_schema
from reference_worlds.postgres.rows import run_from_row, step_from_row
from worlds_sdk import SPEC_VERSION, bench, bench_floors, rules
from worlds_sdk.codec import dumps
from worlds_sdk.errors import EntityConflictError
from worlds_sdk.ids import ALPHABET, new_id
from worlds_sdk.models import EventRequest, EventResult, ResolveData, StructuredError
from worlds_sdk.validation import validate_request

_RUN = "SELECT * FROM runs WHERE run_id = %s FOR UPDATE"
_LAST = "SELECT created_at, event_id FROM events WHERE run_id = %s ORDER BY seq DESC LIMIT 1"
_STEP = "SELECT * FROM steps WHERE run_id = %s AND step_id = %s FOR UPDATE"
_EVENT = (
    "INSERT INTO events (run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at)"
    " VALUES (%s, %s, %s, %s, %s::json, %s, %s)"
)
_UPSERT_RUN = (
    "INSERT INTO runs (run_id, status, deployment_id, workflow_name, spec_version, execution_context, input,"
    " output, error, started_at, completed_at, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s::json, %s, %s, %s::json, %s, %s, %s, %s)"
    " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, output = excluded.output,"
    " error = excluded.error, started_at = excluded.started_at, completed_at = excluded.completed_at,"
    " updated_at = excluded.updated_at"
)
_UPSERT_STEP = (
    "INSERT INTO steps (run_id, step_id, step_name, status, input, output, error, attempt, spec_version,"
    " started_at, completed_at, retry_after, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, output = excluded.output,"
    " error = excluded.error, attempt = excluded.attempt, started_at = excluded.started_at,"
    " completed_at = excluded.completed_at, retry_after = excluded.retry_after, updated_at = excluded.updated_at"
)
_DISPOSE_HOOKS = "UPDATE hooks SET disposed_at = %s WHERE run_id = %s AND disposed_at IS NULL"
_DELETE_WAITS = "DELETE FROM waits WHERE run_id = %s"


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _error_json(error: StructuredError | None) -> str | None:
    """A StructuredError as the ``error`` column holds it (what ``structured_error_v1`` builds)."""
    if error is None:
        return None
    return dumps({"message": error.message, "stack": error.stack, "code": error.code})


def _after(last_id: str | None) -> Callable[[str], str]:
    """A minter of ids strictly greater than the run's last event id (as ``mint_id_v1`` guarantees)."""

    def mint(prefix: str) -> str:
        fresh = new_id(prefix)
        if last_id is None or fresh > last_id:
            return fresh
        digits = list(last_id.split("_", 1)[1])
        for i in reversed(range(len(digits))):
            n = ALPHABET.index(digits[i])
            if n < 31:
                digits[i] = ALPHABET[n + 1]
                break
            digits[i] = "0"
        return f"{prefix}_{''.join(digits)}"

    return mint


class PythonRules:
    """``events.create`` with ``rules.decide`` in Python under ``SELECT … FOR UPDATE``, pipelined."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        validate_request(request)
        run_id = rules.resolve_run_id(run_id, request, datetime.now(UTC))
        async with self._db.connection() as conn, conn.pipeline() as pipe:
            with translated():
                await conn.execute(b"BEGIN", prepare=True)
                try:
                    result = await self._decide_and_write(conn, pipe, run_id, request)
                except BaseException:
                    await conn.execute(b"ROLLBACK", prepare=True)
                    await pipe.sync()
                    raise
        return result

    async def _decide_and_write(
        self, conn: psycopg.AsyncConnection[Any], pipe: Any, run_id: str, request: EventRequest
    ) -> EventResult:
        run_cur = await conn.execute(_RUN, (run_id,), prepare=True)
        last_cur = await conn.execute(_LAST, (run_id,), prepare=True)
        step_cur = None
        if rules.needs_step(request):
            step_cur = await conn.execute(_STEP, (run_id, request.correlation_id), prepare=True)
        await pipe.sync()  # round trip 1: BEGIN and the snapshot
        run_row = await run_cur.fetchone()
        last = await last_cur.fetchone()
        step_row = await step_cur.fetchone() if step_cur is not None else None
        now = datetime.now(UTC)
        if last is not None and last["created_at"] > now:
            now = last["created_at"]
        snapshot = rules.Snapshot(
            run=run_from_row(run_row) if run_row else None, step=step_from_row(step_row) if step_row else None
        )
        effects = rules.decide(
            run_id,
            request,
            snapshot,
            now=now,
            world_spec_version=SPEC_VERSION,
            mint=_after(last["event_id"] if last else None),
        )
        if effects.run is not None:
            r = effects.run
            error = _error_json(r.error)
            await conn.execute(
                _UPSERT_RUN,
                (
                    r.run_id,
                    r.status,
                    r.deployment_id,
                    r.workflow_name,
                    r.spec_version,
                    _json(r.execution_context),
                    r.input,
                    r.output,
                    error,
                    r.started_at,
                    r.completed_at,
                    r.created_at,
                    r.updated_at,
                ),
                prepare=True,
            )
        for event in effects.events:
            await conn.execute(
                _EVENT,
                (
                    event.run_id,
                    event.event_id,
                    event.event_type,
                    event.correlation_id,
                    _json(event.event_data),
                    event.spec_version,
                    event.created_at,
                ),
                prepare=True,
            )
        if effects.step is not None:
            s = effects.step
            error = _error_json(s.error)
            await conn.execute(
                _UPSERT_STEP,
                (
                    s.run_id,
                    s.step_id,
                    s.step_name,
                    s.status,
                    s.input,
                    s.output,
                    error,
                    s.attempt,
                    s.spec_version,
                    s.started_at,
                    s.completed_at,
                    s.retry_after,
                    s.created_at,
                    s.updated_at,
                ),
                prepare=True,
            )
        if effects.dispose_run_children:
            await conn.execute(_DISPOSE_HOOKS, (now, run_id), prepare=True)
            await conn.execute(_DELETE_WAITS, (run_id,), prepare=True)
        await conn.execute(b"COMMIT", prepare=True)
        try:
            await pipe.sync()  # round trip 2: the writes and COMMIT
        except psycopg.errors.UniqueViolation as exc:  # a racing run_created or step_created
            raise EntityConflictError(str(exc)) from exc
        return effects.result


class _PythonWorld:
    """Just enough of a World for ``bench.one_run``."""

    def __init__(self, config: dict[str, Any]) -> None:
        world = PostgresWorld(config)
        self._world = world
        self.events = PythonRules(world._db)

    async def close(self) -> None:
        await self._world.close()


async def _rate(in_flight: int, runs: int, lifecycle: Callable[[], Awaitable[None]]) -> float:
    remaining = iter(range(runs))

    async def worker() -> None:
        for _ in remaining:
            await lifecycle()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return runs * bench.EVENTS_PER_RUN / (time.perf_counter() - started)


async def _round(url: str, schema: str, runs: int, in_flight: int) -> dict[str, float]:
    config = {"url": url, "schema": schema, "pool_size": max(4, in_flight)}
    sql_world, py_world = PostgresWorld(config), _PythonWorld(config)
    try:
        await bench.one_run(sql_world)  # warm both: pools open, statements prepared
        await bench.one_run(py_world)  # type: ignore[arg-type]
        await bench.one_run(py_world)  # type: ignore[arg-type]
        return {
            "plpgsql": await _rate(in_flight, runs, lambda: bench.one_run(sql_world)),
            "python": await _rate(in_flight, runs, lambda: bench.one_run(py_world)),  # type: ignore[arg-type]
            "floor": (
                await bench_floors._postgres_commits(url, f"{schema}_floor", runs * bench.EVENTS_PER_RUN, in_flight)
            )[0],
        }
    finally:
        await sql_world.close()
        await py_world.close()


async def _check_same_outcome(url: str, schema: str) -> None:
    """The prototype must do what the World does on the lifecycle, or its figure means nothing."""
    config = {"url": url, "schema": schema}
    sql_world, py_world = PostgresWorld(config), _PythonWorld(config)
    try:
        results = []
        for world in (sql_world, py_world):
            created = await world.events.create(None, bench._run_created())  # type: ignore[attr-defined]
            assert created.run is not None
            await bench.one_run(world)  # type: ignore[arg-type]
            results.append(await sql_world.runs.get(created.run.run_id))
        try:
            await py_world.events.create(results[1].run_id, bench._run_created())
        except EntityConflictError:
            pass
        else:
            raise AssertionError("the prototype appended run_created twice")
    finally:
        await sql_world.close()
        await py_world.close()


async def _cpu(url: str, schema: str, runs: int, python: bool) -> dict[str, float]:
    """CPU time per event, client and server, of one placement at 1 in flight (robust to other load)."""
    config = {"url": url, "schema": schema, "pool_size": 1}
    return await world_cpu(_PythonWorld(config) if python else PostgresWorld(config), url, schema, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="lifecycles (6 events each) per figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, nargs="*", default=[1, 8], help="none: CPU split only")
    args = parser.parse_args()
    url = os.environ[URL_ENV]
    schema = f"p_{secrets.token_hex(6)}"
    migrate(url, schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE SCHEMA {schema}_floor; CREATE TABLE {schema}_floor.runs (id text PRIMARY KEY, n bigint NOT NULL);"
            f"CREATE TABLE {schema}_floor.events (id bigserial PRIMARY KEY, run text NOT NULL, data bytea)"
        )
    try:
        asyncio.run(_check_same_outcome(url, schema))
        for in_flight in args.in_flight:
            rounds = []
            for i in range(args.rounds):
                rounds.append(asyncio.run(_round(url, schema, args.runs, in_flight)))
                print(
                    f"  round {i + 1}, {in_flight} in flight: "
                    + ", ".join(f"{k} {v:,.0f}" for k, v in rounds[-1].items())
                )
            med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
            ratio = statistics.median(r["python"] / r["plpgsql"] for r in rounds)
            print(
                f"{in_flight} in flight, events/s, median of {args.rounds}: plpgsql {med['plpgsql']:,.0f}"
                f" ({med['plpgsql'] / med['floor']:.2f}x floor), python {med['python']:,.0f}"
                f" ({med['python'] / med['floor']:.2f}x floor), floor {med['floor']:,.0f};"
                f" python/plpgsql (median of per-round ratios) {ratio:.2f}x"
            )
        cpu: dict[str, list[dict[str, float]]] = {"plpgsql": [], "python": []}
        for _ in range(args.rounds):
            for name in cpu:
                cpu[name].append(asyncio.run(_cpu(url, schema, args.runs, name == "python")))
        for name, rounds in cpu.items():
            medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            print(
                f"{name}, 1 in flight, per event (median of {args.rounds}): "
                + ", ".join(f"{key} {value:,.0f} us" for key, value in medians.items())
            )
    finally:
        drop_schema(url, schema)
        drop_schema(url, f"{schema}_floor")


if __name__ == "__main__":
    main()
