"""PgQueuer as a peer of a PostgreSQL-backed World's queue in ``worlds bench``.

PgQueuer (PyPI ``pgqueuer``, benchmarked at 1.6.0) is the Python job queue on
PostgreSQL: the yardstick issue 8 sets for the Postgres World's queue. It runs on
the same server, in the same run, through the same workload
(:func:`worlds_sdk.bench_queue.paced_then_burst`), so the comparison holds on a
noisy machine where absolute figures do not.

Set up as a user of PgQueuer would, at the settings that match the World's:

- its own schema on the server (``search_path``), installed with PgQueuer's
  default ``durable`` tables (all logged: the same durability as the World);
- one ``QueueManager`` with ``batch_size=10`` (the World's consumer claims up to
  its 10 free slots), fed by ``LISTEN`` on its one connection, like the World's
  listener, with PgQueuer's ``dequeue_timeout`` set to the World's poll interval
  (1 s) as the fallback;
- the producer enqueues one message per call, each its own commit, from a pool
  of 10 connections (the World's pool size), as the World's ``queue()`` does;
- PgQueuer's asyncpg driver, its fastest: its psycopg driver shares the one
  connection between ``LISTEN`` and queries, and a query waits for the
  notification reader's 1 s timeout (43 ms p50, 1 s p99 in a trial here), which
  would measure that driver's flaw rather than PgQueuer.

PgQueuer and asyncpg are optional (the ``bench`` extra): without them, or
without psycopg (used here to create and drop PgQueuer's schema),
:func:`missing` says so and the bench prints that instead of a figure.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata

from .bench_queue import Arrivals, paced_then_burst

PRODUCERS = 10
BATCH_SIZE = 10
DEQUEUE_TIMEOUT = timedelta(seconds=1)
ENTRYPOINT = "bench"
INSTALL_HINT = "not installed (pip install 'worlds-sdk[bench]'); not measured"


@dataclass(frozen=True)
class PeerQueue:
    """A peer queue's figures on the same workload, or why there are none (``missing``)."""

    name: str
    messages_per_second: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    missing: str | None = None


def name() -> str:
    """``pgqueuer <version>``, or plain ``pgqueuer`` when it is not installed."""
    try:
        return f"pgqueuer {metadata.version('pgqueuer')}"
    except metadata.PackageNotFoundError:
        return "pgqueuer"


def missing() -> str | None:
    """Why PgQueuer cannot be measured here, or ``None`` if it can."""
    try:
        import asyncpg  # noqa: F401
        import pgqueuer  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as error:
        return f"{error.name} {INSTALL_HINT}"
    return None


async def measure(url: str, count: int, samples: int) -> tuple[float, list[float]]:
    """PgQueuer's burst rate and paced latencies on the server at ``url``, in a schema dropped afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"pgqueuer_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            return await _measure_in(url, schema, count, samples)
        finally:
            await admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def _measure_in(url: str, schema: str, count: int, samples: int) -> tuple[float, list[float]]:
    import asyncpg
    from pgqueuer import Job, Queries, QueueManager
    from pgqueuer.db import AsyncpgDriver, AsyncpgPoolDriver

    settings = {"search_path": schema}
    consumer_conn = await asyncpg.connect(url, server_settings=settings)
    producers = await asyncpg.create_pool(url, min_size=PRODUCERS, max_size=PRODUCERS, server_settings=settings)
    try:
        await Queries(AsyncpgDriver(consumer_conn)).install()
        manager = QueueManager(Queries(AsyncpgDriver(consumer_conn)))
        enqueue = Queries(AsyncpgPoolDriver(producers)).enqueue
        arrivals = Arrivals()

        @manager.entrypoint(ENTRYPOINT)
        async def handler(job: Job) -> None:
            assert job.payload is not None
            arrivals.record(job.payload.decode())

        async def send(key: str) -> None:
            await enqueue(ENTRYPOINT, key.encode())

        running = asyncio.ensure_future(manager.run(dequeue_timeout=DEQUEUE_TIMEOUT, batch_size=BATCH_SIZE))
        workload = asyncio.ensure_future(paced_then_burst(send, arrivals, count, samples))
        try:
            await asyncio.wait([running, workload], return_when=asyncio.FIRST_COMPLETED)
            if not workload.done():  # PgQueuer stopped: its error, not a hang waiting for handler calls
                running.result()
                raise RuntimeError("PgQueuer's QueueManager stopped before the workload was done")
            return workload.result()
        finally:
            workload.cancel()
            manager.shutdown.set()
            await asyncio.gather(running, workload, return_exceptions=True)
    finally:
        await producers.close()
        await consumer_conn.close()
