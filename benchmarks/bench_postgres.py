"""Throughput and latency of the Postgres World on this machine: ``python benchmarks/bench_postgres.py``.

The server is found or started like the tests do it (``$WORLDS_POSTGRES_URL``, else
testcontainers, else a throwaway cluster from the local binaries). ``--durable``
starts a local cluster with PostgreSQL's durable defaults (fsync on) instead of the
throwaway test settings. Every figure is the median of ``--runs`` runs, each on a
fresh schema:

- ``events.create`` per second on 1 connection (one caller, each call awaited) and
  on 4 connections (4 callers on 4 runs, pool of 4);
- queue messages per second, enqueue to handled (one producer enqueueing as fast as
  it can, the built-in consumer with its default concurrency, a handler that counts);
- enqueue -> handler latency p50/p99 (one message at a time; the poll interval is
  the default 1 s, so the latency is the NOTIFY wake-up path);
- isolation: milliseconds to provision a fresh migrated schema (+ drop) versus to
  TRUNCATE a used one -- the figures behind the sandbox's schema-per-instance choice.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from reference_worlds.postgres import PostgresWorld, migrate
from reference_worlds.postgres.plugin import drop_schema
from reference_worlds.postgres.server import LocalCluster, find_bindir, postgres_server
from worlds_sdk.models import EventRequest, MessageMeta

QUEUE = "__wkf_step_bench"
RUN = EventRequest(
    event_type="run_created", event_data={"deployment_id": "bench", "workflow_name": "bench", "input": b"\x00" * 64}
)
TABLES = ("events", "steps", "hooks", "waits", "runs", "messages", "dead_letters", "stream_chunks", "streams")


@contextmanager
def schema(url: str) -> Iterator[dict[str, Any]]:
    name = f"bench_{secrets.token_hex(4)}"
    migrate(url, name)
    try:
        yield {"url": url, "schema": name}
    finally:
        drop_schema(url, name)


async def _step_events(world: PostgresWorld, count: int) -> None:
    created = await world.events.create(None, RUN)
    assert created.run is not None
    run_id = created.run.run_id
    for i in range(count):
        request = EventRequest(
            event_type="step_created", correlation_id=f"step_{i}", event_data={"step_name": "s", "input": b"x" * 64}
        )
        await world.events.create(run_id, request)


async def events_per_second(config: dict[str, Any], count: int, connections: int) -> float:
    world = PostgresWorld({**config, "pool_size": connections})
    try:
        await world.runs.list()  # open the pool outside the measurement
        started = time.perf_counter()
        await asyncio.gather(*(_step_events(world, count // connections) for _ in range(connections)))
        return count / (time.perf_counter() - started)
    finally:
        await world.close()


async def messages_per_second(config: dict[str, Any], count: int) -> float:
    world = PostgresWorld(config)
    handled = 0
    done = asyncio.Event()

    async def handler(message: Any, meta: MessageMeta) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            done.set()

    world.register_handler("__wkf_step_", handler)
    try:
        await world.start()
        started = time.perf_counter()
        for i in range(count):
            await world.queue(QUEUE, {"i": i})
        await asyncio.wait_for(done.wait(), 300)
        return count / (time.perf_counter() - started)
    finally:
        await world.close()


async def latencies_ms(config: dict[str, Any], count: int) -> tuple[float, float]:
    world = PostgresWorld(config)
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def handler(message: Any, meta: MessageMeta) -> None:
        arrived.put_nowait(time.perf_counter())

    world.register_handler("__wkf_step_", handler)
    samples = []
    try:
        await world.start()
        await asyncio.sleep(0.2)  # let the consumer go idle, waiting on NOTIFY
        for i in range(count):
            sent = time.perf_counter()
            await world.queue(QUEUE, {"i": i})
            samples.append((await asyncio.wait_for(arrived.get(), 30) - sent) * 1000)
        quantiles = statistics.quantiles(samples, n=100)
        return quantiles[49], quantiles[98]
    finally:
        await world.close()


def isolation_ms(url: str, count: int) -> tuple[float, float]:
    """Provision+drop a fresh schema vs TRUNCATE a used one (a few events in it), in ms each."""
    started = time.perf_counter()
    for _ in range(count):
        with schema(url):
            pass
    fresh = (time.perf_counter() - started) * 1000 / count
    with schema(url) as config:
        truncate = sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(sql.Identifier(config["schema"], t) for t in TABLES)
        )
        total = 0.0
        for _ in range(count):
            asyncio.run(events_per_second(config, 8, 1))
            with psycopg.connect(url, autocommit=True) as conn:
                started = time.perf_counter()
                conn.execute(truncate)
                total += time.perf_counter() - started
    return fresh, total * 1000 / count


def median_of(runs: int, url: str, measure: Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]) -> Any:
    results: list[Any] = []
    for _ in range(runs):
        with schema(url) as config:
            results.append(asyncio.run(measure(config)))
    if isinstance(results[0], tuple):
        return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))
    return statistics.median(results)


@contextmanager
def server(durable: bool) -> Iterator[str]:
    if not durable:
        with postgres_server() as found:
            yield found.url
        return
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("--durable needs the local PostgreSQL binaries")
    with LocalCluster(bindir, settings={"max_connections": "200"}) as cluster:
        yield cluster.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durable", action="store_true", help="a local cluster with fsync on")
    args = parser.parse_args()
    with server(args.durable) as url:
        with psycopg.connect(url) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', "
                    "'synchronous_commit', 'server_version')"
                ).fetchall()
            )
        print(
            f"server: PostgreSQL {settings['server_version']}, fsync={settings['fsync']}, "
            f"synchronous_commit={settings['synchronous_commit']}; median of {args.runs} runs"
        )
        one = median_of(args.runs, url, lambda c: events_per_second(c, args.events, 1))
        print(f"events.create, 1 connection:   {one:8.0f} /s")
        four = median_of(args.runs, url, lambda c: events_per_second(c, args.events, 4))
        print(f"events.create, 4 connections:  {four:8.0f} /s")
        msgs = median_of(args.runs, url, lambda c: messages_per_second(c, args.messages))
        print(f"queue, enqueue -> handled:     {msgs:8.0f} msg/s")
        p50, p99 = median_of(args.runs, url, lambda c: latencies_ms(c, args.latency_samples))
        print(f"enqueue -> handler latency:    p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        fresh, truncate = isolation_ms(url, 10)
        print(f"isolation per test instance:   fresh schema {fresh:.0f} ms, TRUNCATE {truncate:.0f} ms")


if __name__ == "__main__":
    main()
