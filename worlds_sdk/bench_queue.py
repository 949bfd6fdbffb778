"""The queue workload of ``worlds bench``, one definition for a World's queue and for a peer queue.

A World's queue and a peer (PgQueuer, :mod:`worlds_sdk.bench_pgqueuer`) are
measured by the same code, so their figures differ only by the queue: each
supplies ``send(key)`` (enqueue one message carrying ``key``, durable once it
returns) and calls :meth:`Arrivals.record` from its handler.

- ``WARM_UP`` paced messages first, outside the clock: a pool's connections,
  listeners and prepared statements open on them, as they would have long before
  in a running service. (With one, the slowest paced samples were the first
  twenty: a pool connection opened on demand costs 10-50 ms, and psycopg prepares
  a statement on its fifth use on each connection; p99 of 200 is the second
  slowest sample, so it measured start-up.)
- Paced latency: ``samples`` messages, each sent once the previous one was
  handled, so there is never a backlog; enqueue call to handler call.
- Burst: ``count`` messages, sent 50 at a time while the consumer handles them;
  from the first send until the last handler call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from .models import MessageMeta
from .protocols import World

QUEUE = "__wkf_step_bench"
SEND_AT_ONCE = 50
WARM_UP = 20


class Arrivals:
    """The time of each handler call by message key; :meth:`wait` returns once the given keys have arrived."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._arrived = asyncio.Event()

    def record(self, key: str) -> None:
        self.times[key] = time.perf_counter()
        self._arrived.set()

    async def wait(self, keys: Collection[str]) -> None:
        while not all(k in self.times for k in keys):
            self._arrived.clear()
            await self._arrived.wait()


async def paced_then_burst(
    send: Callable[[str], Awaitable[object]], arrivals: Arrivals, count: int, samples: int
) -> tuple[float, list[float]]:
    """Messages per second of a ``count`` burst, and enqueue→handler milliseconds of ``samples`` paced ones."""
    for i in range(WARM_UP):
        await send(f"warm-up{i}")
        await arrivals.wait([f"warm-up{i}"])
    latencies = []
    for i in range(samples):
        key = f"lat{i}"
        sent = time.perf_counter()
        await send(key)
        await arrivals.wait([key])
        latencies.append((arrivals.times[key] - sent) * 1000)
    keys = [f"m{i}" for i in range(count)]
    started = time.perf_counter()
    for batch in range(0, count, SEND_AT_ONCE):
        await asyncio.gather(*(send(k) for k in keys[batch : batch + SEND_AT_ONCE]))
    await arrivals.wait(keys)
    return count / (max(arrivals.times[k] for k in keys) - started), latencies


async def queue_rate_and_latency(world: World, count: int, samples: int) -> tuple[float, list[float]]:
    """The workload through the World's own consumer, with a handler that only records."""
    arrivals = Arrivals()

    async def handler(message: Any, meta: MessageMeta) -> None:
        arrivals.record(message["key"])

    world.register_handler("__wkf_step_", handler)
    await world.start()
    return await paced_then_burst(lambda key: world.queue(QUEUE, {"key": key}), arrivals, count, samples)
