"""Benchmarks any World through its backend: ``worlds bench WORLD``.

One harness for every World, so figures are comparable across backends and a
World author measures theirs the same way we measure ours. Each repetition runs
on a fresh sandbox instance; the report gives the median of the repetitions.

Measured:

- ``events.create`` per second, ``writers`` concurrent callers (each on its own
  run, each call awaited before the next): sequential when ``writers == 1``;
- queue messages per second, from the first enqueue until the last message is
  handled (the World's own consumer, a handler that only records);
- enqueue→handler latency p50/p99 over messages sent one at a time (no backlog);
- for a World reached through a bridge (one with an async ``ping()``, such as
  the Node bridge's ``NodeWorld``), the median no-op round trip: the part of
  every figure that is the bridge, not the World, printed beside them so that
  a comparison with in-process Worlds stays honest.

Several Worlds in one command are measured one after the other in one run and
printed as one table (:func:`table`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

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
    round_trip_p50_ms: float | None = None
    """Median no-op round trip through the World's bridge; ``None`` for an in-process World."""

    def lines(self) -> list[str]:
        out = [f"world {self.world}: median of {self.repeats} runs"]
        for writers, rate in self.events_per_second.items():
            out.append(f"  events.create/s, {writers} writer(s): {rate:,.0f}")
        out.append(f"  queue messages/s (enqueue to handled): {self.messages_per_second:,.0f}")
        out.append(f"  enqueue->handler latency: p50 {self.latency_p50_ms:.2f} ms, p99 {self.latency_p99_ms:.2f} ms")
        if self.round_trip_p50_ms is not None:
            out.append(f"  bridge overhead, no-op round trip: p50 {self.round_trip_p50_ms:.3f} ms")
        return out


def table(results: Sequence[BenchResult]) -> list[str]:
    """Several Worlds side by side, one row each; the bridge column is the overhead inside their figures."""
    writers = sorted({w for r in results for w in r.events_per_second})
    header = ["world", *(f"events/s x{w}" for w in writers), "msgs/s", "p50 ms", "p99 ms", "bridge rtt ms"]
    rows = [
        [
            r.world,
            *(f"{r.events_per_second[w]:,.0f}" if w in r.events_per_second else "-" for w in writers),
            f"{r.messages_per_second:,.0f}",
            f"{r.latency_p50_ms:.2f}",
            f"{r.latency_p99_ms:.2f}",
            f"{r.round_trip_p50_ms:.3f}" if r.round_trip_p50_ms is not None else "- (in-process)",
        ]
        for r in results
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]


@runtime_checkable
class _Bridged(Protocol):
    """A World behind a bridge, with a round trip that does no work (``NodeWorld.ping``)."""

    async def ping(self) -> None: ...


async def round_trips(world: World, samples: int) -> list[float] | None:
    """Milliseconds per no-op round trip, or ``None`` if the World has no bridge to measure."""
    if not isinstance(world, _Bridged):
        return None
    await world.ping()  # the first call starts the bridge
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await world.ping()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def events_rate(world: World, count: int, writers: int) -> float:
    async def writer(n: int) -> None:
        created = await world.events.create(None, _run_created())
        assert created.run is not None
        for i in range(n):
            # Step ids unique across runs too: world-postgres 4.3.7 keys steps by step id alone (docs/verdicts.md).
            step_id = f"{created.run.run_id}-s{i}"
            request = EventRequest(
                event_type="step_created", correlation_id=step_id, event_data={"step_name": "s", "input": b"\x00x"}
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
    trips: list[float] = []
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
            with sandbox.instance() as config:
                measured = asyncio.run(_with_world(backend, config, partial(round_trips, samples=latency_samples)))
            if measured is not None:
                trips.append(_percentile(measured, 0.50))
    return BenchResult(
        world=backend.id,
        repeats=repeats,
        events_per_second={w: statistics.median(r) for w, r in rates.items()},
        messages_per_second=statistics.median(queue_rates),
        latency_p50_ms=statistics.median(p50s),
        latency_p99_ms=statistics.median(p99s),
        round_trip_p50_ms=statistics.median(trips) if trips else None,
    )


async def _with_world(backend: WorldBackend, config: WorldConfig, body: Any) -> Any:
    world = backend.factory(config)
    try:
        return await body(world)
    finally:
        await world.close()
