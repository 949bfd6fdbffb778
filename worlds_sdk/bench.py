"""Benchmarks any World through its backend: ``worlds bench WORLD``.

One harness for every World, so figures are comparable across backends and a
World author measures theirs the same way we measure ours. Each repetition runs
on a fresh sandbox instance; the report gives the median of the repetitions.

Measured:

- ``events.create`` per second, ``writers`` concurrent callers (each on its own
  run, each call awaited before the next): sequential when ``writers == 1``;
- queue messages per second, from the first enqueue until the last message is
  handled (the World's own consumer, a handler that only records);
- enqueue→handler latency p50/p99 over messages sent one at a time (no backlog).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .backend import WorldBackend, WorldConfig
from .models import EventRequest, MessageMeta
from .protocols import World

QUEUE = "__wkf_step_bench"


@dataclass(frozen=True)
class BenchResult:
    world: str
    repeats: int
    events_per_second: dict[int, float]
    messages_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float

    def lines(self) -> list[str]:
        out = [f"world {self.world}: median of {self.repeats} runs"]
        for writers, rate in self.events_per_second.items():
            out.append(f"  events.create/s, {writers} writer(s): {rate:,.0f}")
        out.append(f"  queue messages/s (enqueue to handled): {self.messages_per_second:,.0f}")
        out.append(f"  enqueue->handler latency: p50 {self.latency_p50_ms:.2f} ms, p99 {self.latency_p99_ms:.2f} ms")
        return out


async def events_rate(world: World, count: int, writers: int) -> float:
    async def writer(n: int) -> None:
        created = await world.events.create(None, _run_created())
        assert created.run is not None
        for i in range(n):
            request = EventRequest(
                event_type="step_created", correlation_id=f"s{i}", event_data={"step_name": "s", "input": b"\x00x"}
            )
            await world.events.create(created.run.run_id, request)

    per_writer = max(1, count // writers)
    started = time.perf_counter()
    await asyncio.gather(*(writer(per_writer) for _ in range(writers)))
    return per_writer * writers / (time.perf_counter() - started)


async def queue_rate_and_latency(world: World, count: int, samples: int) -> tuple[float, list[float]]:
    handled: dict[str, float] = {}
    arrived = asyncio.Event()

    async def handler(message: Any, meta: MessageMeta) -> None:
        handled[message["key"]] = time.perf_counter()
        arrived.set()

    world.register_handler("__wkf_step_", handler)
    await world.start()
    latencies = []
    for i in range(samples):
        key = f"lat{i}"
        sent = time.perf_counter()
        await world.queue(QUEUE, {"key": key})
        while key not in handled:
            arrived.clear()
            await arrived.wait()
        latencies.append((handled[key] - sent) * 1000)
    started = time.perf_counter()
    keys = [f"m{i}" for i in range(count)]
    for batch in range(0, count, 50):
        await asyncio.gather(*(world.queue(QUEUE, {"key": k}) for k in keys[batch : batch + 50]))
    while not all(k in handled for k in keys):
        arrived.clear()
        await arrived.wait()
    return count / (max(handled[k] for k in keys) - started), latencies


def _run_created() -> EventRequest:
    return EventRequest(
        event_type="run_created", event_data={"deployment_id": "bench", "workflow_name": "bench", "input": b"\x00"}
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    backend: WorldBackend,
    settings: WorldConfig,
    *,
    events: int = 1000,
    messages: int = 1000,
    latency_samples: int = 200,
    writers: Sequence[int] = (1, 4),
    repeats: int = 3,
) -> BenchResult:
    """Run every measurement ``repeats`` times on fresh instances; report medians."""
    rates: dict[int, list[float]] = {w: [] for w in writers}
    queue_rates: list[float] = []
    p50s: list[float] = []
    p99s: list[float] = []
    with backend.sandbox(settings) as sandbox:
        for _ in range(repeats):
            for w in writers:
                with sandbox.instance() as config:
                    rates[w].append(
                        asyncio.run(_with_world(backend, config, partial(events_rate, count=events, writers=w)))
                    )
            with sandbox.instance() as config:
                rate, latencies = asyncio.run(
                    _with_world(
                        backend, config, partial(queue_rate_and_latency, count=messages, samples=latency_samples)
                    )
                )
            queue_rates.append(rate)
            p50s.append(_percentile(latencies, 0.50))
            p99s.append(_percentile(latencies, 0.99))
    return BenchResult(
        world=backend.id,
        repeats=repeats,
        events_per_second={w: statistics.median(r) for w, r in rates.items()},
        messages_per_second=statistics.median(queue_rates),
        latency_p50_ms=statistics.median(p50s),
        latency_p99_ms=statistics.median(p99s),
    )


async def _with_world(backend: WorldBackend, config: WorldConfig, body: Any) -> Any:
    world = backend.factory(config)
    try:
        return await body(world)
    finally:
        await world.close()
